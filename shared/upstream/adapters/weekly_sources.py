"""What the weekly summary reads, from the stores that already hold it."""

from __future__ import annotations

from datetime import date
from typing import Any

from google.cloud import firestore

from upstream.adapters.firestore_aggregates import FirestoreAggregates
from upstream.adapters.firestore_alerts import FirestoreAlerts
from upstream.adapters.firestore_store import FirestoreRecords
from upstream.domain.aggregates import DailyCell


class FirestoreWeeklySources:
    """Also what the monthly report reads (`services/monthly_report.py`)."""

    def __init__(self, client: firestore.Client) -> None:
        self._client = client
        self._alerts = FirestoreAlerts(client)
        self._aggregates = FirestoreAggregates(client)
        self._records = FirestoreRecords(client)

    def alerts_since(self, customer_id: str, since: date) -> list[dict[str, Any]]:
        return [a.to_document() for a in self._alerts.recent(customer_id, since)]

    def cells(self, customer_id: str, first: date, end: date) -> list[DailyCell]:
        return self._aggregates.cells(customer_id, first, end)

    def authorizations(self, customer_id: str) -> list[dict[str, Any]]:
        return self._records.authorizations(customer_id)

    def claim_lines(self, customer: str, doc_ids: list[str]) -> dict[str, dict[str, Any]]:
        from upstream.adapters.firestore_api import FirestoreApiStores

        return FirestoreApiStores(self._client).claim_lines(customer, doc_ids)

    def executed_actions(self, customer_id: str, first: date, end: date) -> int:
        """Automation actions executed in [first, end) (single-field range: no index)."""
        from datetime import UTC, datetime, time

        from upstream.adapters.firestore_store import tenant_collection

        query: Any = tenant_collection(self._client, customer_id, "automation_actions").where(
            filter=firestore.FieldFilter("executed_at", ">=",
                                         datetime.combine(first, time(), UTC))).where(
            filter=firestore.FieldFilter("executed_at", "<",
                                         datetime.combine(end, time(), UTC)))
        result = query.count().get()
        return int(result[0][0].value)
