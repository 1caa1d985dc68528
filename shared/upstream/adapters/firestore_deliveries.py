"""The delivery log: `customers/{id}/deliveries/{alert}.{channel}.{severity}`, one document
per alert, channel and severity, with every attempt (when, outcome, error) in it.

`begin` makes delivery once per channel in effect: a delivered document is never sent
again (a redelivered Pub/Sub message, or the next detector run re-publishing an escalated
alert at the same severity), and a send in progress holds a lease so a concurrent
redelivery does not double it; after a crash the lease lapses and the retry sends.
"""

from __future__ import annotations

import builtins
from datetime import datetime, timedelta
from typing import Any, Literal

from google.api_core import exceptions as gexc
from google.cloud import firestore

from upstream.adapters.firestore_store import tenant_collection

DELIVERIES = "deliveries"
Begin = Literal["deliver", "delivered", "busy"]


class FirestoreDeliveries:
    def __init__(self, client: firestore.Client) -> None:
        self._client = client

    def _ref(self, customer_id: str, key: str) -> firestore.DocumentReference:
        return tenant_collection(self._client, customer_id, DELIVERIES).document(key)

    def begin(self, customer_id: str, key: str, meta: dict[str, Any], now: datetime,
              lease_seconds: int) -> Begin:
        ref = self._ref(customer_id, key)

        @firestore.transactional
        def take(transaction: firestore.Transaction) -> Begin:
            snap = ref.get(transaction=transaction)
            data = (snap.to_dict() or {}) if snap.exists else {}
            if data.get("status") == "delivered":
                return "delivered"
            lease = data.get("lease_until")
            if data.get("status") == "sending" and lease is not None and lease > now:
                return "busy"
            transaction.set(ref, {**meta, "status": "sending", "updated_at": now,
                                  "lease_until": now + timedelta(seconds=lease_seconds)},
                            merge=True)
            return "deliver"

        result: Begin = take(self._client.transaction())
        return result

    def finish(self, customer_id: str, key: str, status: str, now: datetime,
               error: str | None = None) -> None:
        self._ref(customer_id, key).set({
            "status": status, "updated_at": now, "lease_until": None, "error": error,
            "attempts": firestore.ArrayUnion([{"at": now, "status": status,
                                               "error": error}])}, merge=True)

    def queue(self, customer_id: str, key: str, meta: dict[str, Any], now: datetime) -> None:
        """Held for the next digest; a document already delivered or queued is left alone."""
        ref = self._ref(customer_id, key)
        try:
            ref.create({**meta, "status": "queued", "updated_at": now, "attempts": []})
        except gexc.Conflict:  # AlreadyExists is a Conflict over gRPC: it is already there
            pass

    def queued(self, customer_id: str, limit: int = 500) -> builtins.list[dict[str, Any]]:
        """Deliveries held for the digest, with their document keys."""
        query = tenant_collection(self._client, customer_id, DELIVERIES).where(
            filter=firestore.FieldFilter("status", "==", "queued")).limit(limit)
        return [{**(snap.to_dict() or {}), "key": snap.id} for snap in query.stream()]

    def alerts_sent_since(self, customer_id: str, since: datetime) -> int:
        """Distinct alerts delivered at once since `since` (the weekly budget); those sent in
        a digest (queued with a `reason`) do not count. One range filter, so no composite
        index; a week's deliveries are a few hundred documents."""
        query = tenant_collection(self._client, customer_id, DELIVERIES).where(
            filter=firestore.FieldFilter("updated_at", ">=", since)).select(
            ["alert_id", "status", "reason"])
        return len({data.get("alert_id") for snap in query.stream()
                    if (data := snap.to_dict() or {}).get("status") == "delivered"
                    and data.get("alert_id") and not data.get("reason")})

    def get(self, customer_id: str, key: str) -> dict[str, Any] | None:
        snap = self._ref(customer_id, key).get()
        return snap.to_dict() if snap.exists else None

    def list(self, customer_id: str, limit: int = 100) -> list[dict[str, Any]]:
        return [snap.to_dict() or {} for snap in tenant_collection(
            self._client, customer_id, DELIVERIES).limit(limit).stream()]
