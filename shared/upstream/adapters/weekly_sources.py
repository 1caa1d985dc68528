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
    def __init__(self, client: firestore.Client) -> None:
        self._alerts = FirestoreAlerts(client)
        self._aggregates = FirestoreAggregates(client)
        self._records = FirestoreRecords(client)

    def alerts_since(self, customer_id: str, since: date) -> list[dict[str, Any]]:
        return [a.to_document() for a in self._alerts.recent(customer_id, since)]

    def cells(self, customer_id: str, first: date, end: date) -> list[DailyCell]:
        return self._aggregates.cells(customer_id, first, end)

    def authorizations(self, customer_id: str) -> list[dict[str, Any]]:
        return self._records.authorizations(customer_id)
