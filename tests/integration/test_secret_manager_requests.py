"""The real Secret Manager client, over its REST transport, against a local HTTP server that
records what it is sent: proves `SecretManagerStore` asks for the right resources with the
right bodies (there is no Secret Manager emulator)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager

from upstream.adapters.secrets import SecretManagerStore


@dataclass
class FakeSecretManager:
    """Holds secrets like the service does; answers 404/409 like it does."""

    versions: dict[str, list[bytes]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


def _handler(state: FakeSecretManager) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _error(self, status: int, reason: str) -> None:
            self._answer(status, {"error": {"code": status, "message": reason, "status": reason}})

        def do_GET(self) -> None:
            path = self.path.split("?")[0].removeprefix("/v1/")
            state.requests.append(("GET", path, {}))
            secret = path.split("/")[3]
            if secret not in state.versions:
                return self._error(404, "NOT_FOUND")
            versions = state.versions[secret]
            if path.endswith("/versions"):  # list, newest first, like the service
                state.requests[-1] = ("GET", path, {"query": self.path.split("?", 1)[1]})
                return self._answer(200, {"versions": [
                    {"name": f"{path}/{n}", "state": "ENABLED"}
                    for n in range(len(versions), 0, -1)]})
            number = path.removesuffix(":access").rsplit("/", 1)[1]
            index = len(versions) if number == "latest" else int(number)
            data = base64.b64encode(versions[index - 1]).decode()
            return self._answer(200, {"name": path.removesuffix(":access"),
                                      "payload": {"data": data}})

        def do_POST(self) -> None:
            path = self.path.split("?")[0].removeprefix("/v1/")
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            state.requests.append(("POST", path, body))
            if path.endswith("/secrets"):
                secret = self.path.split("secretId=")[1].split("&")[0]
                if secret in state.versions:
                    return self._error(409, "ALREADY_EXISTS")
                state.versions[secret] = []
                return self._answer(200, {"name": f"{path}/{secret}"})
            secret = path.split("/")[3].removesuffix(":addVersion")
            if secret not in state.versions:
                return self._error(404, "NOT_FOUND")
            state.versions[secret].append(base64.b64decode(body["payload"]["data"]))
            return self._answer(200, {"name": f"{path}/versions/{len(state.versions[secret])}"})

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def secret_manager() -> Iterator[tuple[FakeSecretManager, SecretManagerStore]]:
    state = FakeSecretManager()
    server = HTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = secretmanager.SecretManagerServiceClient(
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        transport="rest",
        client_options=ClientOptions(api_endpoint=f"http://127.0.0.1:{server.server_port}"))
    yield state, SecretManagerStore(client, "upstream-prod")
    server.shutdown()


def test_get_reads_the_latest_version(
        secret_manager: tuple[FakeSecretManager, SecretManagerStore]) -> None:
    state, store = secret_manager
    state.versions["patient-hash-key-acme"] = [b"old" * 11, b"new" * 11]
    assert store.get("patient-hash-key-acme") == b"new" * 11
    assert state.requests == [
        ("GET", "projects/upstream-prod/secrets/patient-hash-key-acme/versions/latest:access", {})]


def test_a_missing_secret_is_none_not_an_error(
        secret_manager: tuple[FakeSecretManager, SecretManagerStore]) -> None:
    _, store = secret_manager
    assert store.get("webhook-secret-nobody") is None


def test_reads_are_cached(secret_manager: tuple[FakeSecretManager, SecretManagerStore]) -> None:
    state, store = secret_manager
    state.versions["s"] = [b"v1"]
    assert store.get("s") == store.get("s") == b"v1"
    assert len(state.requests) == 1


def test_put_creates_the_secret_once_then_adds_versions(
        secret_manager: tuple[FakeSecretManager, SecretManagerStore]) -> None:
    state, store = secret_manager
    store.put("webhook-secret-acme", b"first")
    store.put("webhook-secret-acme", b"second")
    missing, create, add, add_again = state.requests
    assert missing[1] == add[1] == add_again[1] == \
        "projects/upstream-prod/secrets/webhook-secret-acme:addVersion"
    assert create == ("POST", "projects/upstream-prod/secrets",
                      {"replication": {"automatic": {}}})
    assert base64.b64decode(add[2]["payload"]["data"]) == b"first"
    assert state.versions["webhook-secret-acme"] == [b"first", b"second"]
    assert store.get("webhook-secret-acme") == b"second"  # put invalidates the cache


def test_recent_versions_are_listed_enabled_newest_first_then_read(
        secret_manager: tuple[FakeSecretManager, SecretManagerStore]) -> None:
    state, store = secret_manager
    state.versions["athena-hub-secret-acme"] = [b"v1", b"v2", b"v3"]
    assert store.get_recent("athena-hub-secret-acme") == [b"v3", b"v2"]
    listing, first, second = state.requests
    assert listing[1] == "projects/upstream-prod/secrets/athena-hub-secret-acme/versions"
    assert "filter=state%3AENABLED" in listing[2]["query"]
    assert first[1].endswith("/versions/3:access") and second[1].endswith("/versions/2:access")
    assert store.get_recent("athena-hub-secret-acme") == [b"v3", b"v2"]  # cached
    assert len(state.requests) == 3
    assert store.get_recent("missing") == []
