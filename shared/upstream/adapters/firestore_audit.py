"""The access audit in Firestore: `customers/{id}/audit/{entry}`, each entry created once with
`create` (a precondition that it does not exist). No code path updates or deletes one (this
adapter has no such method); a TTL policy on `expire_at` removes an entry six years after it
was written (infra/firestore.tf). Firestore IAM is database-wide, so append-only is kept by
the code, not by a permission."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from google.cloud import firestore

from upstream.adapters.firestore_store import tenant_collection
from upstream.domain.audit import entry_id

AUDIT = "audit"


class FirestoreAudit:
    def __init__(self, client: firestore.Client) -> None:
        self._client = client

    def append(self, customer: str, entry: dict[str, Any]) -> None:
        tenant_collection(self._client, customer, AUDIT).document(
            entry_id(entry["at"], uuid.uuid4().hex)).create(entry)

    def page(self, customer: str, since: datetime | None, actor: str | None, size: int,
             after: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first; `after` is the id of the last entry of the previous page."""
        query: Any = tenant_collection(self._client, customer, AUDIT)
        if actor:
            query = query.where(filter=firestore.FieldFilter("actor", "==", actor))
        if since:
            query = query.where(filter=firestore.FieldFilter("at", ">=", since))
        query = query.order_by("at", direction=firestore.Query.DESCENDING).order_by(
            "__name__", direction=firestore.Query.DESCENDING)
        if after:
            last = tenant_collection(self._client, customer, AUDIT).document(after).get()
            if not last.exists:
                return [], None
            query = query.start_after(last)
        snaps = list(query.limit(size + 1).stream())
        more = len(snaps) > size
        snaps = snaps[:size]
        return [s.to_dict() or {} for s in snaps], (snaps[-1].id if more and snaps else None)
