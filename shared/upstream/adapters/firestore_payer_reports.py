"""The weekly payer report (fingerprints and archetypes) under `customers/{c}/payer_reports`.

One document, `latest`, holds the whole report, replaced by each weekly run: the API and the
dashboard read one document instead of a year of aggregates, and a report is never half
written (a single set). A dated copy beside it keeps how archetypes changed from week to week.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from google.cloud import firestore

from upstream.adapters.firestore_store import tenant_collection

PAYER_REPORTS = "payer_reports"
LATEST = "latest"
# A Firestore document holds 1 MiB; a payer's entry is about 3 KB. Practices with more payers
# than this keep the ones that paid the most (the report is sorted by payer, then cut).
MAX_PAYERS = 250


class FirestorePayerReports:
    def __init__(self, client: firestore.Client) -> None:
        self._client = client

    def save_payer_report(self, customer: str, as_of: date,
                          payers: list[dict[str, Any]]) -> None:
        kept = sorted(payers, key=lambda p: -float(
            p["fingerprint"].get("paid_dollars_recent") or 0))[:MAX_PAYERS]
        document = {"as_of": as_of.isoformat(),
                    "payers": sorted(kept, key=lambda p: str(p["payer"]))}
        reports = tenant_collection(self._client, customer, PAYER_REPORTS)
        batch = self._client.batch()
        batch.set(reports.document(LATEST), document)
        batch.set(reports.document(as_of.isoformat()), document)
        batch.commit()

    def payer_report(self, customer: str) -> dict[str, Any] | None:
        snap = tenant_collection(self._client, customer, PAYER_REPORTS).document(LATEST).get()
        return snap.to_dict() if snap.exists else None
