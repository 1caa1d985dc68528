"""A small OpenID Connect provider standing in for a practice's own (Okta, Entra ID, Google
Workspace…), for the local stack, the tests and the Chromium walk: the dashboard's real
relying party (`adapters/oidc_provider.py`) talks HTTP to it exactly as it would to a real one.

Serves discovery (`/.well-known/openid-configuration`), `/authorize` (a sign-in form over its
own small directory of people; the code goes back to the registered redirect URI only),
`/token` (client secret by HTTP Basic, the code once, within a minute, for the same client
and redirect URI, the PKCE S256 verifier) and `/jwks` (its RS256 key). ID tokens are signed.

Test hooks, as in `fake_athena`: `faults` answers these status codes before real answers;
`claims_override` is merged into the next ID tokens' claims (another audience, no nonce, an
unverified e-mail…); `sign_with_unpublished_key` signs with a key `/jwks` does not list.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import html
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.wrappers import Request, Response

from upstream.stack import quiet_server

CODE_SECONDS = 60
TOKEN_SECONDS = 300
_KEY_BITS = 2048


@dataclass(frozen=True, slots=True)
class _Grant:
    client_id: str
    redirect_uri: str
    email: str
    nonce: str | None
    challenge: str
    expires: float


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json",
                    headers={"Cache-Control": "no-store"})


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=_KEY_BITS)


class FakeIdp:
    def __init__(self, issuer: str, clients: dict[str, tuple[str, str]],
                 people: dict[str, tuple[str, bool]]) -> None:
        """`clients`: client id → (secret, redirect URI); `people`: e-mail → (password,
        whether the directory has verified that e-mail)."""
        self.issuer = issuer.rstrip("/")
        self.clients = dict(clients)
        self.people = dict(people)
        self._key, self._kid = _new_key(), secrets.token_hex(8)
        self._rogue = _new_key()
        self._grants: dict[str, _Grant] = {}
        self._lock = threading.Lock()
        self.faults: deque[int] = deque()
        self.claims_override: dict[str, Any] = {}
        self.sign_with_unpublished_key = False
        self.token_requests = 0

    # --- WSGI ----------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        response = self._route(request)
        return response(environ, start_response)

    def _route(self, request: Request) -> Response:
        if self.faults:
            return _json(self.faults.popleft(), {"error": "temporarily_unavailable"})
        path, method = request.path, request.method
        if path == "/.well-known/openid-configuration" and method == "GET":
            return _json(200, self.discovery())
        if path == "/jwks" and method == "GET":
            from jwt.algorithms import RSAAlgorithm

            jwk = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
            return _json(200, {"keys": [{**jwk, "kid": self._kid, "use": "sig",
                                         "alg": "RS256"}]})
        if path == "/authorize" and method in ("GET", "POST"):
            return self._authorize(request)
        if path == "/token" and method == "POST":
            return self._token(request)
        return _json(404, {"error": "not_found"})

    def discovery(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "authorization_endpoint": self.issuer + "/authorize",
                "token_endpoint": self.issuer + "/token", "jwks_uri": self.issuer + "/jwks",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"]}

    # --- /authorize ----------------------------------------------------------------------------

    def _authorize(self, request: Request) -> Response:
        asked = request.values
        client = self.clients.get(asked.get("client_id", ""))
        if client is None or asked.get("redirect_uri") != client[1]:
            # Never redirect to an unregistered URI (RFC 6749 4.1.2.1): say so here.
            return Response("Unknown client or redirect URI.", 400, mimetype="text/plain")
        if asked.get("response_type") != "code" or asked.get("code_challenge_method") != "S256" \
                or not asked.get("code_challenge") or "openid" not in asked.get("scope", ""):
            return self._back(client[1], {"error": "invalid_request",
                                          "state": asked.get("state", "")})
        if request.method == "GET":
            return self._form(asked)
        if asked.get("cancel"):
            return self._back(client[1], {"error": "access_denied",
                                          "state": asked.get("state", "")})
        email = asked.get("email", "").strip().lower()
        person = self.people.get(email)
        if person is None or not hmac.compare_digest(person[0].encode(),
                                                     asked.get("password", "").encode()):
            return self._form(asked, "Unknown e-mail or wrong password.")
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._grants[code] = _Grant(asked["client_id"], client[1], email,
                                        asked.get("nonce"), asked["code_challenge"],
                                        time.monotonic() + CODE_SECONDS)
        return self._back(client[1], {"code": code, "state": asked.get("state", "")})

    @staticmethod
    def _back(redirect_uri: str, query: dict[str, str]) -> Response:
        return Response("", 302, headers={"Location": f"{redirect_uri}?{urlencode(query)}"})

    @staticmethod
    def _form(asked: Any, error: str = "") -> Response:
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in asked.items() if k not in ("email", "password", "cancel"))
        body = (
            "<!doctype html><title>Practice sign-in (local IdP)</title>"
            "<h1>Practice sign-in</h1><p>The practice's own identity provider "
            "(a local stand-in).</p>"
            + (f'<p id="idp-error">{html.escape(error)}</p>' if error else "")
            + '<form method="post" action="/authorize">' + hidden
            + '<label>E-mail <input id="idp-email" name="email" type="email"></label>'
            '<label>Password <input id="idp-password" name="password" type="password">'
            '</label><button id="idp-sign-in" type="submit">Sign in</button>'
            '<button id="idp-cancel" name="cancel" value="1" type="submit">Cancel</button>'
            "</form>")
        return Response(body, 200 if not error else 401, mimetype="text/html")

    # --- /token --------------------------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        self.token_requests += 1
        auth = request.authorization
        client = self.clients.get(auth.username or "") if auth else None
        if auth is None or client is None or not hmac.compare_digest(
                client[0].encode(), (auth.password or "").encode()):
            return _json(401, {"error": "invalid_client"})
        form = request.form
        if form.get("grant_type") != "authorization_code":
            return _json(400, {"error": "unsupported_grant_type"})
        with self._lock:  # a code is good once, whatever happens next
            grant = self._grants.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        if grant is None or grant.expires < time.monotonic() \
                or grant.client_id != auth.username \
                or grant.redirect_uri != form.get("redirect_uri") \
                or not hmac.compare_digest(grant.challenge.encode(), challenge.encode()):
            return _json(400, {"error": "invalid_grant"})
        return _json(200, {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer",
                           "expires_in": TOKEN_SECONDS,
                           "id_token": self.id_token(grant.email, grant.client_id,
                                                     grant.nonce)})

    def subject(self, email: str) -> str:
        return "idp-" + hashlib.sha256(f"{self.issuer}|{email}".encode()).hexdigest()[:20]

    def id_token(self, email: str, audience: str, nonce: str | None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": audience, "sub": self.subject(email), "email": email,
            "email_verified": self.people.get(email, ("", False))[1], "iat": now,
            "auth_time": now, "exp": now + TOKEN_SECONDS}
        if nonce:
            claims["nonce"] = nonce
        claims.update(self.claims_override)
        claims = {k: v for k, v in claims.items() if v is not None}
        key = self._rogue if self.sign_with_unpublished_key else self._key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self._kid})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--redirect-uri", required=True)
    parser.add_argument("--person", action="append", default=[],
                        help="EMAIL:PASSWORD, a person of the IdP's directory (verified)")
    args = parser.parse_args()
    people = {p.split(":", 1)[0].lower(): (p.split(":", 1)[1], True) for p in args.person}
    app = FakeIdp(f"http://{args.host}:{args.port}",
                  {args.client_id: (args.client_secret, args.redirect_uri)}, people)
    quiet_server.server(app, args.host, args.port).serve_forever()


if __name__ == "__main__":
    main()
