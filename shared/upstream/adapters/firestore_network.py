"""The cross-practice network, the one place outside `customers/` (DESIGN "Firestore": the
network detector reads only anonymised per-payer data). Layout:
`network_payers/{payer token}/signals/{tenant token}_{day}`, `…/changes/{day}`, and the pooled
counts `…/pool/{day}` (`counts.{tenant token}` = decided and denied lines of that day; a
practice's re-run overwrites its own entry, so a day is never counted twice)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath

from upstream.domain.detect.network import payer_token

NETWORK = "network_payers"


class FirestoreNetwork:
    def __init__(self, client: firestore.Client) -> None:
        self._client = client

    def _payer(self, payer: str) -> firestore.DocumentReference:
        return self._client.collection(NETWORK).document(payer_token(payer))

    def signal(self, payer: str, tenant: str, day: date) -> None:
        self._payer(payer).collection("signals").document(f"{tenant}_{day}").set(
            {"payer": payer, "tenant": tenant, "day": day.isoformat()})

    def signals(self, payer: str, since: date) -> list[dict[str, Any]]:
        query = self._payer(payer).collection("signals").where(
            filter=firestore.FieldFilter("day", ">=", since.isoformat()))
        return [snap.to_dict() or {} for snap in query.stream()]

    def record_change(self, payer: str, day: date, practices: int,
                      pooled: dict[str, Any] | None = None) -> None:
        """One document per day and way of finding it (signals, pooled test)."""
        name = day.isoformat() + ("_pooled" if pooled else "")
        document: dict[str, Any] = {"payer": payer, "day": day.isoformat(),
                                    "practices": practices}
        if pooled:
            document["pooled"] = pooled
        self._payer(payer).collection("changes").document(name).set(document, merge=True)

    def contribute(self, payer: str, tenant: str,
                   days: Mapping[date, Mapping[str, Any]]) -> None:
        """Each day's entry of this practice replaced whole (a lag bin it no longer has must
        not linger), the other practices' entries left alone."""
        pool = self._payer(payer).collection("pool")
        batch = self._client.batch()
        for count, (day, entry) in enumerate(sorted(days.items()), start=1):
            batch.set(pool.document(day.isoformat()),
                      {"day": day.isoformat(), "counts": {tenant: dict(entry)}},
                      merge=[FieldPath("day"), FieldPath("counts", tenant)])
            if count % 400 == 0:
                batch.commit()
                batch = self._client.batch()
        batch.commit()

    def pool(self, payer: str, since: date) -> dict[date, dict[str, dict[str, Any]]]:
        query = self._payer(payer).collection("pool").where(
            filter=firestore.FieldFilter("day", ">=", since.isoformat()))
        daily: dict[date, dict[str, dict[str, Any]]] = {}
        for snap in query.stream():
            document = snap.to_dict() or {}
            daily[date.fromisoformat(str(document["day"]))] = {
                tenant: entry for tenant, entry in (document.get("counts") or {}).items()
                if isinstance(entry, dict)}
        return daily

    def changes(self, payers: Iterable[str], since: date) -> list[dict[str, Any]]:
        found = []
        for payer in payers:
            query = self._payer(payer).collection("changes").where(
                filter=firestore.FieldFilter("day", ">=", since.isoformat()))
            found += [snap.to_dict() or {} for snap in query.stream()]
        return found
