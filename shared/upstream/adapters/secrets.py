"""Secrets behind one interface: Google Secret Manager in production, a local JSON file
(mode 0600) for the local stack and offline runs.

Reads are cached briefly (`CACHE_SECONDS`): Secret Manager bills and rate-limits access
calls, and a rotated secret must take effect within minutes, not at the next cold start.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from pathlib import Path

from google.api_core import exceptions as gexc
from google.cloud import secretmanager

CACHE_SECONDS = 120.0


class LocalFileSecretStore:
    """`{"name": "<base64 value>"}` in one file; writes are atomic (temp file + rename)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()

    def _load(self) -> dict[str, str]:
        try:
            return dict(json.loads(self._path.read_text()))
        except FileNotFoundError:
            return {}

    def get(self, name: str) -> bytes | None:
        value = self._load().get(name)
        return None if value is None else base64.b64decode(value)

    def put(self, name: str, value: bytes) -> None:
        with self._lock:
            data = self._load()
            data[name] = base64.b64encode(value).decode()
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle, indent=1, sort_keys=True)
            os.replace(tmp, self._path)


class SecretManagerStore:
    """Google Secret Manager; `get` reads the `latest` version."""

    def __init__(self, client: secretmanager.SecretManagerServiceClient, project: str) -> None:
        self._client = client
        self._project = project
        self._cache: dict[str, tuple[float, bytes | None]] = {}

    def get(self, name: str) -> bytes | None:
        now = time.monotonic()
        cached = self._cache.get(name)
        if cached and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        path = self._client.secret_version_path(self._project, name, "latest")
        try:
            value: bytes | None = self._client.access_secret_version(
                request={"name": path}).payload.data
        except gexc.NotFound:
            value = None
        self._cache[name] = (now, value)
        return value

    def put(self, name: str, value: bytes) -> None:
        parent = f"projects/{self._project}"
        try:
            self._client.create_secret(request={
                "parent": parent, "secret_id": name,
                "secret": {"replication": {"automatic": {}}}})
        except gexc.Conflict:  # gRPC raises AlreadyExists (a Conflict), REST a bare 409 Conflict
            pass
        self._client.add_secret_version(request={
            "parent": self._client.secret_path(self._project, name),
            "payload": {"data": value}})
        self._cache.pop(name, None)
