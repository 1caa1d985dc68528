"""Risk scores under `customers/{id}/risk_scores/{line doc id}`: the score of the line version
whose `content_hash` they carry (what makes a redelivered change a no-op)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.cloud import firestore

from upstream.adapters.firestore_store import tenant_collection
from upstream.domain.records import RecordKind

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


def _flagged_rows(client: firestore.Client, customer_id: str,
                  scores: list[Any]) -> list[dict[str, Any]]:
    """The scored lines that are still pending, with what a biller needs to find the claim
    (never the patient)."""
    claims = tenant_collection(client, customer_id, RecordKind.CLAIMS.value)
    lines = {snap.id: snap.to_dict() or {} for snap in client.get_all(
        [claims.document(s.id) for s in scores],
        field_paths=["outcome", "payer", "cpt", "service_date", "billed_cents"])
        if snap.exists}
    found = []
    for snap in scores:
        line = lines.get(snap.id)
        if not line or line.get("outcome") != "PENDING":
            continue
        score = snap.to_dict() or {}
        found.append({"claim_id": score.get("claim_id"), "line": score.get("line"),
                      "payer": line.get("payer"), "cpt": line.get("cpt"),
                      "service_date": line.get("service_date"),
                      "billed_cents": line.get("billed_cents"), "score": score.get("score"),
                      "category": score.get("category"),
                      "recommendation": score.get("recommendation"),
                      "fixes": score.get("fixes") or [],
                      "factors": [f for f in score.get("factors") or [] if f.get("points")]})
    return found


def flagged_lines(client: firestore.Client, customer_id: str,
                  limit: int) -> list[dict[str, Any]]:
    """Pending lines the risk scorer marked HIGH or MEDIUM, newest scores first (index
    `risk_flagged` in infra/firestore.tf)."""
    query = tenant_collection(client, customer_id, RISK_SCORES).where(
        filter=firestore.FieldFilter("category", "in", ["HIGH", "MEDIUM"])).order_by(
        "scored_at", direction=firestore.Query.DESCENDING).limit(limit * 3)
    return _flagged_rows(client, customer_id, list(query.stream()))[:limit]
