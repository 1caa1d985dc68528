"""Shared fixtures. `emulators` starts the real Firestore, Pub/Sub and Storage emulators
(and the functions and bridge) on ports of its own, once per test session, and stops them
after; tests that need a server start it themselves, through the same stack code as
`upstream stack up`."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests

from upstream.stack import manager
from upstream.stack.config import StackConfig

if TYPE_CHECKING:
    from google.cloud import firestore

# Single sign-on's provider and people (`idp`, `world`), for the tests of its parts and pages.
pytest_plugins = ["tests.unit.sso_fixtures"]


@pytest.fixture(scope="session")
def stack_config(tmp_path_factory: pytest.TempPathFactory) -> StackConfig:
    return StackConfig(project="upstream-test", data_dir=tmp_path_factory.mktemp("stack"),
                       firestore_port=18681, pubsub_port=18682, storage_port=18683,
                       functions_base_port=18690, athena_port=18689,
                       smtp_port=18688)


@pytest.fixture(scope="session")
def emulators(stack_config: StackConfig) -> Iterator[StackConfig]:
    os.environ.update(stack_config.emulator_env())
    # The dashboard sends files from 256 KiB up as resumable sessions here (8 MiB in use), so
    # the Chromium walk proves the chunked path on a small file.
    os.environ.setdefault("UPSTREAM_UPLOAD_RESUMABLE_FROM_BYTES", str(256 * 1024))
    try:
        manager.up(stack_config)
        yield stack_config
    finally:
        manager.down(stack_config)


@pytest.fixture
def clean_stack(emulators: StackConfig) -> StackConfig:
    """Firestore and Storage emptied before the test (DESIGN: DELETE …/documents, GET /wipe)."""
    manager.reset_data(emulators)
    return emulators


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2):  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def http_ok(url: str) -> bool:
    try:
        requests.get(url, timeout=1)
        return True
    except requests.RequestException:
        return False


SHARED = Path(__file__).resolve().parents[2] / "shared"


def emulator_db(config: StackConfig) -> firestore.Client:
    """A Firestore client on the stack's emulator (what the integration tests read with)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    return firestore.Client(project=config.project,
                            credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
