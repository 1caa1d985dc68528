"""Automation under `customers/{id}/automation_actions/{action_id}` (one per action: `create`
makes a second proposal of the same action a no-op) and the execution log under
`customers/{id}/automation_log/{entry_id}`, written with `create` only: an entry is never
overwritten or changed (a second write of the same id fails), so the log is append-only."""

from __future__ import annotations

import builtins
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from upstream.adapters.firestore_store import plain, tenant_collection

ACTIONS = "automation_actions"
LOG = "automation_log"


class FirestoreAutomation:
    def __init__(self, client: firestore.Client) -> None:
        self._client = client

    def _actions(self, customer_id: str) -> firestore.CollectionReference:
        return tenant_collection(self._client, customer_id, ACTIONS)

    def begin(self, customer_id: str, action_id: str, document: dict[str, Any]) -> bool:
        try:
            self._actions(customer_id).document(action_id).create(document)
        except gexc.Conflict:  # AlreadyExists: proposed before
            return False
        return True

    def update(self, customer_id: str, action_id: str, fields: dict[str, Any]) -> None:
        self._actions(customer_id).document(action_id).update(fields)

    def get(self, customer_id: str, action_id: str) -> dict[str, Any] | None:
        snap = self._actions(customer_id).document(action_id).get()
        return plain(snap.to_dict()) if snap.exists else None

    def actions(self, customer_id: str, status: str | None,
                limit: int) -> builtins.list[dict[str, Any]]:
        query: Any = self._actions(customer_id)
        if status:
            query = query.where(filter=firestore.FieldFilter("status", "==", status))
        return [plain(snap.to_dict()) for snap in query.limit(limit).stream()]

    def append_log(self, customer_id: str, entry: dict[str, Any]) -> None:
        tenant_collection(self._client, customer_id, LOG).document(entry["entry_id"]).create(
            entry)

    def log_entries(self, customer_id: str, limit: int) -> builtins.list[dict[str, Any]]:
        query = tenant_collection(self._client, customer_id, LOG).order_by(
            "at", direction=firestore.Query.DESCENDING).limit(limit)
        return [plain(snap.to_dict()) for snap in query.stream()]
