"""Risk scores under `customers/{id}/risk_scores/{line doc id}`: the score of the line version
whose `content_hash` they carry (what makes a redelivered change a no-op)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.cloud import firestore

from upstream.adapters.firestore_store import tenant_collection

RISK_SCORES = "risk_scores"
BATCH_LIMIT = 400  # under Firestore's 500 writes per batch


class FirestoreRiskScores:
    def __init__(self, client: firestore.Client) -> None:
        self._client = client

    def scored_hashes(self, customer_id: str, doc_ids: Sequence[str]) -> dict[str, str]:
        collection = tenant_collection(self._client, customer_id, RISK_SCORES)
        refs = [collection.document(doc_id) for doc_id in dict.fromkeys(doc_ids)]
        return {snap.id: str((snap.to_dict() or {}).get("content_hash"))
                for snap in self._client.get_all(refs, field_paths=["content_hash"])
                if snap.exists}

    def save_scores(self, customer_id: str, scores: Mapping[str, dict[str, Any]]) -> None:
        collection = tenant_collection(self._client, customer_id, RISK_SCORES)
        items = list(scores.items())
        for start in range(0, len(items), BATCH_LIMIT):
            batch = self._client.batch()
            for doc_id, document in items[start:start + BATCH_LIMIT]:
                batch.set(collection.document(doc_id), document)
            batch.commit()

    def get(self, customer_id: str, doc_id: str) -> dict[str, Any] | None:
        snap = tenant_collection(self._client, customer_id, RISK_SCORES).document(doc_id).get()
        return snap.to_dict() if snap.exists else None
