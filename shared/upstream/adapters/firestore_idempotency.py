"""Idempotency keys in `idempotency/{sha256(key)}` with `expire_at`, which a TTL policy in
infra/ deletes. The emulator never expires them (DESIGN), and production deletes within a
day of expiry, not at it: a key past its `expire_at` counts as absent when read."""

from __future__ import annotations

import hashlib
from datetime import datetime

from google.api_core import exceptions as gexc
from google.cloud import firestore

IDEMPOTENCY = "idempotency"


class FirestoreIdempotency:
    def __init__(self, client: firestore.Client) -> None:
        self._client = client

    def _ref(self, key: str) -> firestore.DocumentReference:
        return self._client.collection(IDEMPOTENCY).document(
            hashlib.sha256(key.encode()).hexdigest())

    def claim(self, key: str, expire_at: datetime, now: datetime) -> bool:
        ref = self._ref(key)
        try:
            ref.create({"expire_at": expire_at, "created_at": now})
            return True
        except gexc.Conflict:  # AlreadyExists over gRPC is a Conflict
            pass

        @firestore.transactional
        def reclaim(transaction: firestore.Transaction) -> bool:
            snap = ref.get(transaction=transaction)
            held = (snap.to_dict() or {}).get("expire_at") if snap.exists else None
            if held is not None and held > now:
                return False
            transaction.set(ref, {"expire_at": expire_at, "created_at": now})
            return True

        result: bool = reclaim(self._client.transaction())
        return result

    def release(self, key: str) -> None:
        self._ref(key).delete()
