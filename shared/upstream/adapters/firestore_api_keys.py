"""API keys at `api_keys/{key id}` (top level: a request names its key, not its tenant),
each holding its tenant, the secret's hash, scopes, expiry and revocation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.cloud import firestore

API_KEYS = "api_keys"


class FirestoreApiKeys:
    def __init__(self, client: firestore.Client) -> None:
        self._client = client

    def get(self, key_id: str) -> dict[str, Any] | None:
        snap = self._client.collection(API_KEYS).document(key_id).get()
        return snap.to_dict() if snap.exists else None

    def create(self, key_id: str, customer_id: str, secret_hash: str, scopes: list[str],
               name: str, now: datetime, expires_at: datetime | None) -> None:
        self._client.collection(API_KEYS).document(key_id).create({
            "key_id": key_id, "customer_id": customer_id, "secret_hash": secret_hash,
            "scopes": scopes, "name": name, "created_at": now, "expires_at": expires_at,
            "revoked_at": None})

    def revoke(self, key_id: str, now: datetime) -> bool:
        ref = self._client.collection(API_KEYS).document(key_id)
        if not ref.get().exists:
            return False
        ref.update({"revoked_at": now})
        return True
