"""Alerts under `customers/{id}/alerts/{alert_id}` (Contract 4) and detector-run records under
`customers/{id}/detector_runs/{run}_{as_of}`.

Users change an alert's `status` (acknowledge, noise) while detectors update its numbers, so
an update never writes `status` (nor when the episode began); only a new alert gets them.
`published_severity` records what the `alerts` topic has already been told: an alert is
published when it is new or its severity rose, and a rerun publishes nothing twice.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import date
from typing import Any

from google.cloud import firestore

from upstream.adapters.firestore_store import tenant_collection
from upstream.domain.detect.findings import Alert

ALERTS = "alerts"
RUNS = "detector_runs"


class FirestoreAlerts:
    def __init__(self, client: firestore.Client) -> None:
        self._client = client

    def _alerts(self, customer_id: str) -> firestore.CollectionReference:
        return tenant_collection(self._client, customer_id, ALERTS)

    def recent(self, customer_id: str, since: date) -> list[Alert]:
        query = self._alerts(customer_id).where(
            filter=firestore.FieldFilter("last_seen", ">=", since.isoformat()))
        return [Alert.model_validate(_without_bookkeeping(snap.to_dict() or {}))
                for snap in query.stream()]

    def save(self, customer_id: str, alerts: Iterable[Alert], known: set[str]) -> list[str]:
        """Writes alerts; returns the ids whose current severity is not yet published."""
        unpublished = []
        batch = self._client.batch()
        refs = {}
        for alert in alerts:
            document = alert.to_document()
            ref = refs[alert.alert_id] = self._alerts(customer_id).document(alert.alert_id)
            if alert.alert_id in known:  # a person's status and the episode's start stay
                for kept in ("status", "created_at", "first_seen"):
                    document.pop(kept)
            batch.set(ref, document, merge=True)
        if refs:
            batch.commit()
        if refs:
            for snap in self._client.get_all(list(refs.values())):
                data = snap.to_dict() or {}
                if data.get("published_severity") != data.get("severity"):
                    unpublished.append(snap.id)
        return sorted(unpublished)

    def get(self, customer_id: str, alert_id: str) -> dict[str, Any] | None:
        snap = self._alerts(customer_id).document(alert_id).get()
        return snap.to_dict() if snap.exists else None

    def mark_published(self, customer_id: str, alert_id: str, severity: str) -> None:
        self._alerts(customer_id).document(alert_id).update({"published_severity": severity})

    def list(self, customer_id: str, status: str | None = None,
             limit: int = 100) -> list[dict[str, Any]]:
        query: Any = self._alerts(customer_id)
        if status:
            query = query.where(filter=firestore.FieldFilter("status", "==", status))
        docs = [snap.to_dict() or {} for snap in query.limit(limit).stream()]
        return sorted(docs, key=lambda d: (d.get("created_at", ""), d.get("alert_id", "")))

    def page(self, customer_id: str, filters: dict[str, str], size: int,
             after: str | None) -> tuple[builtins.list[dict[str, Any]], str | None]:
        """Alerts matching every (field == value) filter, in id order; (page, next id).
        Equality filters only, ordered by document id: no composite index needed."""
        query: Any = self._alerts(customer_id)
        for field, value in sorted(filters.items()):
            query = query.where(filter=firestore.FieldFilter(field, "==", value))
        query = query.order_by("__name__")
        if after:
            query = query.start_after(self._alerts(customer_id).document(after))
        docs = [snap.to_dict() or {} for snap in query.limit(size + 1).stream()]
        more = docs[size]["alert_id"] if len(docs) > size else None
        page = [_without_bookkeeping(d) for d in docs[:size]]
        return page, (page[-1]["alert_id"] if more else None)

    def set_status(self, customer_id: str, alert_id: str, status: str,
                   entry: dict[str, Any]) -> dict[str, Any] | None:
        """A person's decision on an alert, with its history entry (who, when, note);
        None if the tenant has no such alert."""
        ref = self._alerts(customer_id).document(alert_id)

        @firestore.transactional
        def change(transaction: firestore.Transaction) -> dict[str, Any] | None:
            snap = ref.get(transaction=transaction)
            if not snap.exists:
                return None
            document = snap.to_dict() or {}
            history = [*document.get("history", []), entry]
            transaction.update(ref, {"status": status, "history": history})
            return _without_bookkeeping({**document, "status": status, "history": history})

        result: dict[str, Any] | None = change(self._client.transaction())
        return result

    def record_feedback(self, customer_id: str, alert_id: str, useful: bool,
                        entry: dict[str, Any]) -> dict[str, Any] | None:
        ref = self._alerts(customer_id).document(alert_id)
        if not ref.get().exists:
            return None
        ref.update({"feedback": firestore.ArrayUnion([{**entry, "useful": useful}])})
        snap = ref.get()
        return _without_bookkeeping(snap.to_dict() or {})

    def record_run(self, customer_id: str, run_id: str, summary: dict[str, Any]) -> None:
        tenant_collection(self._client, customer_id, RUNS).document(run_id).set(summary)

    def get_run(self, customer_id: str, run_id: str) -> dict[str, Any] | None:
        snap = tenant_collection(self._client, customer_id, RUNS).document(run_id).get()
        return snap.to_dict() if snap.exists else None


def _without_bookkeeping(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "published_severity"}
