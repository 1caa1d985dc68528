"""The API's view of the stores: every read and write under `customers/{customer}/…` of the
caller's key (the service never names another tenant)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from upstream.adapters.firestore_aggregates import FirestoreAggregates
from upstream.adapters.firestore_alerts import RUNS, FirestoreAlerts
from upstream.adapters.firestore_api_keys import FirestoreApiKeys
from upstream.adapters.firestore_audit import FirestoreAudit
from upstream.adapters.firestore_deliveries import DELIVERIES
from upstream.adapters.firestore_payer_reports import FirestorePayerReports
from upstream.adapters.firestore_store import (
    CUSTOMERS,
    FirestoreRecords,
    FirestoreTenants,
    FirestoreUploads,
    tenant_collection,
)
from upstream.domain.aggregates import DailyCell
from upstream.domain.records import RecordKind


class FirestoreApiStores:
    def __init__(self, client: firestore.Client) -> None:
        self._client = client
        self._keys = FirestoreApiKeys(client)
        self._alerts = FirestoreAlerts(client)
        self._records = FirestoreRecords(client)
        self._uploads = FirestoreUploads(client)
        self._tenants = FirestoreTenants(client)
        self._aggregates = FirestoreAggregates(client)
        self._audit = FirestoreAudit(client)
        self._payer_reports = FirestorePayerReports(client)

    def key(self, key_id: str) -> dict[str, Any] | None:
        return self._keys.get(key_id)

    def append_audit(self, customer: str, entry: dict[str, Any]) -> None:
        self._audit.append(customer, entry)

    def audit_page(self, customer: str, since: datetime | None, actor: str | None,
                   size: int, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
        return self._audit.page(customer, since, actor, size, after)

    def alert_page(self, customer: str, filters: dict[str, str], size: int,
                   after: str | None) -> tuple[list[dict[str, Any]], str | None]:
        return self._alerts.page(customer, filters, size, after)

    def alert(self, customer: str, alert_id: str) -> dict[str, Any] | None:
        found = self._alerts.get(customer, alert_id)
        return {k: v for k, v in found.items() if k != "published_severity"} if found else None

    def set_alert_status(self, customer: str, alert_id: str, status: str,
                         entry: dict[str, Any]) -> dict[str, Any] | None:
        return self._alerts.set_status(customer, alert_id, status, entry)

    def alert_feedback(self, customer: str, alert_id: str, useful: bool,
                       entry: dict[str, Any]) -> dict[str, Any] | None:
        return self._alerts.record_feedback(customer, alert_id, useful, entry)

    def authorizations(self, customer: str) -> list[dict[str, Any]]:
        return self._records.authorizations(customer)

    def set_authorization_status(self, customer: str, number: str, status: str) -> bool:
        try:
            self._records.set_authorization_status(customer, number, status)
        except gexc.NotFound:
            return False
        return True

    def uploads(self, customer: str, limit: int) -> list[dict[str, Any]]:
        return self._uploads.list_uploads(customer, limit)

    def upload(self, customer: str, upload_id: str) -> dict[str, Any] | None:
        return self._uploads.get_upload(customer, upload_id)

    def tenant(self, customer: str) -> dict[str, Any] | None:
        return self._tenants.get(customer)

    def update_tenant(self, customer: str, fields: dict[str, Any]) -> None:
        """Each given setting replaced whole (a provider left out of `providers` is gone),
        where a merge would keep what the practice removed."""
        try:
            self._client.collection(CUSTOMERS).document(customer).update(fields)
        except gexc.NotFound:  # a key whose tenant document is gone: recreate it
            self._tenants.upsert(customer, fields)

    def cells(self, customer: str, first: date, end: date) -> list[DailyCell]:
        return self._aggregates.cells(customer, first, end)

    def payer_report(self, customer: str) -> dict[str, Any] | None:
        return self._payer_reports.payer_report(customer)

    def failed_deliveries(self, customer: str, limit: int) -> list[dict[str, Any]]:
        query = tenant_collection(self._client, customer, DELIVERIES).where(
            filter=firestore.FieldFilter("status", "==", "failed")).limit(limit)
        return [snap.to_dict() or {} for snap in query.stream()]

    def claim_lines(self, customer: str, doc_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Claim lines by document id (only the fields the home page's gains read)."""
        claims = tenant_collection(self._client, customer, RecordKind.CLAIMS.value)
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(doc_ids), 300):
            refs = [claims.document(d) for d in doc_ids[start:start + 300]]
            for snap in self._client.get_all(
                    refs, field_paths=["outcome", "decided_date", "paid_cents"]):
                if snap.exists:
                    found[snap.id] = snap.to_dict() or {}
        return found

    def flagged_lines(self, customer: str, limit: int) -> list[dict[str, Any]]:
        from upstream.adapters.firestore_risk import flagged_lines

        return flagged_lines(self._client, customer, limit)

    def last_run_day(self, customer: str) -> date | None:
        """The as-of day of the tenant's latest detector run (single-field order: no index)."""
        query = tenant_collection(self._client, customer, RUNS).order_by(
            "as_of", direction=firestore.Query.DESCENDING).limit(1)
        for snap in query.stream():
            try:
                return date.fromisoformat(str((snap.to_dict() or {}).get("as_of")))
            except ValueError:
                return None
        return None
