"""Claim lines arriving from EHRs, order-tolerant, under `customers/{id}/`:

- `claims/{doc id}`: written in a transaction that never lets an older version (by
  `updated_at`) overwrite a newer one;
- `pending_outcomes/{claim|line}`: an outcome that arrived before its claim, applied (and
  removed) when the claim's line is written;
- `ehr_pending/{event id}`: athenahealth id-only events, waiting for the fetcher and then
  marked with what it found (`fetched`, `not_found`, `voided`, `unmappable`, …).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from upstream.adapters.firestore_store import tenant_collection
from upstream.domain.records import (
    RecordKind,
    authorization_doc_id,
    claim_line_doc_id,
    document_hash,
)

PENDING_OUTCOMES = "pending_outcomes"
EHR_PENDING = "ehr_pending"
OUTCOME_FIELDS = ("outcome", "paid_cents", "allowed_cents", "carc_codes", "decided_date")


def _pending_id(claim_id: str, line_key: str) -> str:
    return hashlib.sha256(f"{claim_id}\x1f{line_key}".encode()).hexdigest()[:40]


def _with_hash(document: dict[str, Any]) -> dict[str, Any]:
    return {**document, "content_hash": document_hash(document)}


class FirestoreEhrRecords:
    def __init__(self, client: firestore.Client) -> None:
        self._client = client

    def upsert_lines(self, customer_id: str, documents: Sequence[dict[str, Any]],
                     ) -> list[tuple[str, dict[str, Any]]]:
        """Writes each line unless a newer version is stored; applies a waiting outcome.
        Returns what was written, as (doc id, document) for the change message."""
        claims = tenant_collection(self._client, customer_id, RecordKind.CLAIMS.value)
        pending = tenant_collection(self._client, customer_id, PENDING_OUTCOMES)
        written: list[tuple[str, dict[str, Any]]] = []
        for document in documents:
            doc_id = claim_line_doc_id(document["claim_id"], document["line_key"])
            ref = claims.document(doc_id)
            waiting = pending.document(_pending_id(document["claim_id"], document["line_key"]))

            @firestore.transactional
            def write(transaction: firestore.Transaction, document: dict[str, Any] = document,
                      ref: Any = ref, waiting: Any = waiting) -> dict[str, Any] | None:
                current = ref.get(transaction=transaction)
                held = waiting.get(transaction=transaction)
                stored = current.to_dict() if current.exists else None
                if stored and str(stored.get("updated_at", "")) > str(document["updated_at"]):
                    return None
                merged = dict(document)
                if held.exists:
                    merged.update({k: v for k, v in (held.to_dict() or {}).items()
                                   if k in OUTCOME_FIELDS})
                    transaction.delete(waiting)
                final = _with_hash(merged)
                transaction.set(ref, final)
                return final

            result = write(self._client.transaction())
            if result is not None:
                written.append((doc_id, result))
        return written

    def apply_outcome(self, customer_id: str, claim_id: str, line_key: str,
                      fields: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """Updates the line(s) if stored (`*` = every line of the claim); otherwise keeps the
        outcome until the claim arrives. Returns the lines changed."""
        claims = tenant_collection(self._client, customer_id, RecordKind.CLAIMS.value)
        if line_key == "*":
            refs = [snap.reference for snap in claims.where(
                filter=firestore.FieldFilter("claim_id", "==", claim_id)).stream()]
        else:
            refs = [claims.document(claim_line_doc_id(claim_id, line_key))]
        changed = []
        for ref in refs:
            snap = ref.get()
            if not snap.exists:
                tenant_collection(self._client, customer_id, PENDING_OUTCOMES).document(
                    _pending_id(claim_id, line_key)).set(fields)
                continue
            merged = {k: v for k, v in (snap.to_dict() or {}).items() if k != "content_hash"}
            final = _with_hash({**merged, **fields})
            ref.set(final)
            changed.append((ref.id, final))
        return changed

    def upsert_authorizations(self, customer_id: str,
                              documents: Sequence[dict[str, Any]]) -> int:
        """Authorizations from EHR responses, merged into `authorizations/{doc id}` (what a
        CSV said and the response does not, e.g. units used, stays); an older response
        (by `updated_at`) never overwrites a newer one. Returns how many were written."""
        written = 0
        for document in documents:
            ref = tenant_collection(self._client, customer_id, "authorizations").document(
                authorization_doc_id(str(document["authorization_number"])))
            known = {k: v for k, v in document.items() if v is not None}

            @firestore.transactional
            def write(transaction: firestore.Transaction,
                      ref: firestore.DocumentReference = ref,
                      known: dict[str, Any] = known) -> bool:
                snap = ref.get(transaction=transaction)
                stored = (snap.to_dict() or {}) if snap.exists else {}
                if str(stored.get("updated_at") or "") > str(known["updated_at"]):
                    return False
                transaction.set(ref, {**known, "content_hash": document_hash(
                    {**stored, **known})}, merge=True)
                return True

            written += bool(write(self._client.transaction()))
        return written

    def hold_event(self, customer_id: str, event: dict[str, Any], received_at: datetime) -> None:
        """Kept until the fetcher resolves it; a redelivery never moves a resolved event back
        to waiting."""
        ref = self._event(customer_id, str(event.get("event_id")))
        try:
            ref.create({**event, "received_at": received_at, "status": "awaiting_fetch"})
        except gexc.AlreadyExists:
            pass

    def mark_event(self, customer_id: str, event_id: str, status: str,
                   detail: dict[str, Any]) -> None:
        self._event(customer_id, event_id).set(
            {"event_id": event_id, "status": status, **detail,
             "resolved_at": firestore.SERVER_TIMESTAMP}, merge=True)

    def _event(self, customer_id: str, event_id: str) -> Any:
        doc_id = hashlib.sha256(event_id.encode()).hexdigest()[:40]
        return tenant_collection(self._client, customer_id, EHR_PENDING).document(doc_id)
