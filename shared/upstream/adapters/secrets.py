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
PREVIOUS = "@previous"  # the local store's key for a secret's version before the latest
# Versions that verify at once: the new secret and the one it replaces.
RECENT_VERSIONS = 2


class LocalFileSecretStore:
    """`{"name": "<base64 value>"}` in one file; writes are atomic (temp file + rename)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._loaded: tuple[tuple[int, int, int], dict[str, str]] | None = None

    def _load(self) -> dict[str, str]:
        """Re-read only when the file changed: every write replaces it with a new file (new
        inode), and mtime and size are compared too. Webhooks read secrets on every request."""
        try:
            info = self._path.stat()
        except FileNotFoundError:
            return {}
        stamp = (info.st_mtime_ns, info.st_ino, info.st_size)
        loaded = self._loaded
        if loaded is None or loaded[0] != stamp:
            loaded = self._loaded = (stamp, dict(json.loads(self._path.read_text())))
        return loaded[1]  # read-only for callers: `put` copies before changing

    def get(self, name: str) -> bytes | None:
        value = self._load().get(name)
        return None if value is None else base64.b64decode(value)

    def get_recent(self, name: str) -> list[bytes]:
        data = self._load()
        return [base64.b64decode(v) for v in (data.get(name), data.get(name + PREVIOUS))
                if v is not None]

    def put(self, name: str, value: bytes) -> None:
        """A new version; the one it replaces stays valid as the previous version."""
        with self._lock:
            data = dict(self._load())
            if name in data:
                data[name + PREVIOUS] = data[name]
            data[name] = base64.b64encode(value).decode()
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle, indent=1, sort_keys=True)
            os.replace(tmp, self._path)
            self._loaded = None


class SecretManagerStore:
    """Google Secret Manager; `get` reads the `latest` version."""

    def __init__(self, client: secretmanager.SecretManagerServiceClient, project: str) -> None:
        self._client = client
        self._project = project
        self._cache: dict[str, tuple[float, bytes | None]] = {}
        self._recent: dict[str, tuple[float, list[bytes]]] = {}

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

    def get_recent(self, name: str) -> list[bytes]:
        """The newest enabled versions (Secret Manager lists newest first); disabling the old
        version ends its validity."""
        now = time.monotonic()
        cached = self._recent.get(name)
        if cached and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        try:
            versions = self._client.list_secret_versions(request={
                "parent": self._client.secret_path(self._project, name),
                "filter": "state:ENABLED", "page_size": RECENT_VERSIONS})
            names = [v.name for _, v in zip(range(RECENT_VERSIONS), versions, strict=False)]
            values = [self._client.access_secret_version(request={"name": n}).payload.data
                      for n in names]
        except gexc.NotFound:
            values = []
        self._recent[name] = (now, values)
        return values

    def put(self, name: str, value: bytes) -> None:
        """A new version of the secret, which is made first only if it does not exist: a
        function holding just `secretVersionAdder` on a secret Terraform declared (the
        dashboard storing a practice's single sign-on secret) never needs to create one."""
        version = {"parent": self._client.secret_path(self._project, name),
                   "payload": {"data": value}}
        try:
            self._client.add_secret_version(request=version)
        except gexc.NotFound:
            try:
                self._client.create_secret(request={
                    "parent": f"projects/{self._project}", "secret_id": name,
                    "secret": {"replication": {"automatic": {}}}})
            except gexc.Conflict:  # made meanwhile (gRPC AlreadyExists, REST a bare 409)
                pass
            self._client.add_secret_version(request=version)
        self._cache.pop(name, None)
        self._recent.pop(name, None)
