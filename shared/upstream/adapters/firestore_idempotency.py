"""Idempotency keys in `idempotency/{sha256(key)}` with `expire_at`, which a TTL policy in
infra/ deletes. The emulator never expires them (DESIGN), and production deletes within a
day of expiry, not at it: a key past its `expire_at` counts as absent when read.

The claim's create (every webhook request makes one) is a lean Commit (`lean_grpc`); the
rare paths (a key that exists, a release) go through the library.

Each claim writes a random token with the key. The create is retried on UNAVAILABLE; when a
first attempt was committed but its answer lost, the retry finds the key taken. Without the
token that claim would count as a duplicate, the event would never be published, and the
sender, told "duplicate", would not send it again. With it, the claim finds its own token
and holds the key."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry, if_exception_type
from google.cloud import firestore
from google.cloud.firestore_v1.types import firestore as firestore_types
from google.cloud.firestore_v1.types import write as write_types

from upstream.adapters.lean_grpc import LeanUnary

IDEMPOTENCY = "idempotency"
# The generated client's defaults for Commit (firestore_v1 transports/base.py).
COMMIT_RETRY = Retry(initial=0.1, maximum=60.0, multiplier=1.3, deadline=60.0,
                     predicate=if_exception_type(gexc.ResourceExhausted,
                                                 gexc.ServiceUnavailable))
COMMIT_TIMEOUT_SECONDS = 60.0
_CommitRequest = firestore_types.CommitRequest.pb()
_Write = write_types.Write.pb()


class FirestoreIdempotency:
    def __init__(self, client: firestore.Client,
                 new_token: Callable[[], str] = lambda: secrets.token_hex(16)) -> None:
        self._client = client
        self._new_token = new_token
        self._commit: LeanUnary | None = None

    def _ref(self, key: str) -> firestore.DocumentReference:
        return self._client.collection(IDEMPOTENCY).document(
            hashlib.sha256(key.encode()).hexdigest())

    def _create(self, ref: firestore.DocumentReference, expire_at: datetime,
                now: datetime, token: str) -> None:
        """`ref.create({"expire_at": …, "created_at": …, "claim": token})` as one Commit."""
        database = self._client._database_string
        if self._commit is None:
            # The library's own channel and metadata (the database prefix, and the
            # emulator's owner token when FIRESTORE_EMULATOR_HOST is set).
            self._commit = LeanUnary(
                self._client._firestore_api.transport.grpc_channel,
                "/google.firestore.v1.Firestore/Commit", _CommitRequest,
                firestore_types.CommitResponse.pb(), COMMIT_RETRY, COMMIT_TIMEOUT_SECONDS,
                self._client._rpc_metadata)
        write = _Write()
        write.update.name = f"{database}/documents/{IDEMPOTENCY}/{ref.id}"
        write.update.fields["expire_at"].timestamp_value.FromDatetime(expire_at)
        write.update.fields["created_at"].timestamp_value.FromDatetime(now)
        write.update.fields["claim"].string_value = token
        write.current_document.exists = False
        self._commit(_CommitRequest(database=database, writes=[write]),
                     (("database", database),))

    def claim(self, key: str, expire_at: datetime, now: datetime) -> bool:
        ref = self._ref(key)
        token = self._new_token()
        try:
            self._create(ref, expire_at, now, token)
            return True
        except gexc.Conflict:  # AlreadyExists over gRPC is a Conflict
            pass

        @firestore.transactional
        def reclaim(transaction: firestore.Transaction) -> bool:
            snap = ref.get(transaction=transaction)
            stored = (snap.to_dict() or {}) if snap.exists else {}
            if stored.get("claim") == token:  # our own create, its answer lost and retried
                return True
            held = stored.get("expire_at")
            if held is not None and held > now:
                return False
            transaction.set(ref, {"expire_at": expire_at, "created_at": now, "claim": token})
            return True

        result: bool = reclaim(self._client.transaction())
        return result

    def release(self, key: str) -> None:
        self._ref(key).delete()
