"""Cached client factories: nothing is created at import time (cold starts stay cheap and
tests need no patching). The emulator variables (FIRESTORE_EMULATOR_HOST,
PUBSUB_EMULATOR_HOST, STORAGE_EMULATOR_HOST) are honoured by the client libraries."""

from __future__ import annotations

import os
from functools import cache

from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import firestore, pubsub_v1, storage  # type: ignore[attr-defined]

from upstream.settings import get_settings


def _emulated_credentials(variable: str) -> Credentials | None:
    return AnonymousCredentials() if os.environ.get(variable) else None  # type: ignore[no-untyped-call]


@cache
def firestore_client() -> firestore.Client:
    return firestore.Client(project=get_settings().project,
                            credentials=_emulated_credentials("FIRESTORE_EMULATOR_HOST"))


# The client library holds each message up to 10 ms hoping to batch it with others. Our
# publishers wait for the ack (nothing is answered before the event is safe), so that hold is
# pure latency on every webhook answer; 1 ms still batches a burst.
PUBLISH_MAX_LATENCY_SECONDS = 0.001


@cache
def publisher_client() -> pubsub_v1.PublisherClient:
    return pubsub_v1.PublisherClient(batch_settings=pubsub_v1.types.BatchSettings(
        max_latency=PUBLISH_MAX_LATENCY_SECONDS))


@cache
def storage_client() -> storage.Client:
    return storage.Client(project=get_settings().project,
                          credentials=_emulated_credentials("STORAGE_EMULATOR_HOST"))
