"""A small stand-in for athenaOne's API, for the local stack and the tests: the fetcher's real
client (`adapters.athena_api`) talks HTTP to it exactly as it would to athenahealth, so token
requests, bearer checks, 404s, 429s and 5xxs are exercised for real.

Serves `POST /oauth2/v1/token` (Basic auth, client credentials, the MDP scope),
`GET /v1/{practice}/claims/{claim}`, `GET /v1/{practice}/patients/{patient}/insurances` and
`GET /v1/{practice}/patients/{patient}/referralauths` (paged) from a fixtures file. Clients
are the `athena-oauth-<customer>` secrets of the local secret store (JSON `{"client_id",
"client_secret"}`), so `upstream tenant add` is all it takes.
Faults for tests: `faults` is a queue of status codes answered before the next real answers.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

from upstream.adapters.athena_api import SCOPE, TOKEN_PATH
from upstream.stack import quiet_server

FIXTURES = Path(__file__).with_name("data") / "athena_fixtures.json"
_CLAIM = re.compile(r"^/v1/(?P<practice>\d+)/claims/(?P<claim>[A-Za-z0-9]+)$")
_INSURANCES = re.compile(r"^/v1/(?P<practice>\d+)/patients/(?P<patient>[A-Za-z0-9]+)/insurances$")
_REFERRALS = re.compile(
    r"^/v1/(?P<practice>\d+)/patients/(?P<patient>[A-Za-z0-9]+)/referralauths$")


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json",
                    headers=headers or {})


class FakeAthena:
    def __init__(self, fixtures: dict[str, Any], clients: Callable[[], dict[str, str]],
                 token_ttl: float = 3600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._fixtures = fixtures
        self._clients = clients
        self._ttl = token_ttl
        self._clock = clock
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()
        self.faults: deque[int] = deque()
        self.requests: list[tuple[str, str, str]] = []  # (method, path, auth scheme)

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        scheme = request.headers.get("Authorization", "").split(" ", 1)[0]
        with self._lock:
            self.requests.append((request.method, request.path, scheme))
            fault = self.faults.popleft() if self.faults else None
        if fault is not None:
            response = _json(fault, {"error": "injected fault"},
                             {"Retry-After": "0"} if fault == 429 else None)
        elif request.path == TOKEN_PATH:
            response = self._token(request)
        else:
            response = self._data(request)
        return response(environ, start_response)

    def _token(self, request: Request) -> Response:
        if request.method != "POST":
            return _json(405, {"error": "method_not_allowed"})
        if request.form.get("grant_type") != "client_credentials" \
                or request.form.get("scope") != SCOPE:
            return _json(400, {"error": "invalid_request"})
        auth = request.authorization
        known = self._clients()
        if auth is None or auth.type != "basic" or not auth.username \
                or not secrets.compare_digest(known.get(auth.username, "\0"), auth.password or ""):
            return _json(401, {"error": "invalid_client"})
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = self._clock() + self._ttl
        return _json(200, {"access_token": token, "token_type": "Bearer",
                           "expires_in": int(self._ttl), "scope": SCOPE})

    def _data(self, request: Request) -> Response:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""
        with self._lock:
            expires = self._tokens.get(token)
        if expires is None or expires < self._clock():
            return _json(401, {"error": "invalid_token"})
        if request.method != "GET":
            return _json(405, {"error": "method_not_allowed"})
        practices = self._fixtures.get("practices", {})
        if m := _CLAIM.match(request.path):
            claim = practices.get(m["practice"], {}).get("claims", {}).get(m["claim"])
            return _json(200, claim) if claim else _json(404, {"error": "Claim not found"})
        if m := _INSURANCES.match(request.path):
            patient = practices.get(m["practice"], {}).get("patients", {}).get(m["patient"])
            if patient is None:
                return _json(404, {"error": "Patient not found"})
            insurances = patient.get("insurances", [])
            return _json(200, {"insurances": insurances, "totalcount": len(insurances)})
        if m := _REFERRALS.match(request.path):
            patient = practices.get(m["practice"], {}).get("patients", {}).get(m["patient"])
            if patient is None:
                return _json(404, {"error": "Patient not found"})
            return self._page(request, patient.get("referralauths", []))
        return _json(404, {"error": "no such endpoint"})

    def _page(self, request: Request, items: list[Any]) -> Response:
        """athenaOne's list paging: `limit`/`offset`, `next` when more follow; expired
        authorizations only with `showexpired=true`."""
        if request.args.get("showexpired") != "true":
            items = [i for i in items if not i.get("expired")]
        try:
            limit = max(1, min(5000, int(request.args.get("limit", "1500"))))
            offset = max(0, int(request.args.get("offset", "0")))
        except ValueError:
            return _json(400, {"error": "limit and offset are numbers"})
        body: dict[str, Any] = {"referralauths": items[offset:offset + limit],
                                "totalcount": len(items)}
        if offset + limit < len(items):
            body["next"] = f"{request.path}?offset={offset + limit}&limit={limit}"
        return _json(200, body)


def clients_from_secrets_file(path: Path) -> Callable[[], dict[str, str]]:
    """client id → secret, from every `athena-oauth-*` entry of the local secret store."""

    def read() -> dict[str, str]:
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        found = {}
        for name, value in stored.items():
            if name.startswith("athena-oauth-") and "@" not in name:
                try:
                    creds = json.loads(base64.b64decode(value))
                    found[str(creds["client_id"])] = str(creds["client_secret"])
                except (ValueError, KeyError, TypeError):
                    continue
        return found

    return read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fixtures", type=Path, default=FIXTURES)
    parser.add_argument("--secrets-file", type=Path, required=True)
    args = parser.parse_args()
    app = FakeAthena(json.loads(args.fixtures.read_text()),
                     clients_from_secrets_file(args.secrets_file))
    quiet_server.server(app, args.host, args.port).serve_forever()


if __name__ == "__main__":
    main()
