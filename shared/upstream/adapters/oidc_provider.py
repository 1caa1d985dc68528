"""The practice's OpenID Connect provider, over HTTP: its discovery document, the code for
tokens exchange, and the ID token's signature against the provider's published keys.

Discovery (OIDC Discovery 1.0 section 4) gives the endpoints; its `issuer` must equal the
configured one exactly (4.3), so a document served from elsewhere cannot redirect the keys.
The exchange authenticates with the client secret (HTTP Basic, RFC 6749 2.3.1) and the PKCE
verifier. The ID token is verified with PyJWT against the provider's JWKS, asymmetric
algorithms only (never `none`, never an HMAC keyed by something public), with issuer,
audience, expiry and issue time required (OIDC Core 3.1.3.7).

A provider that does not answer, or answers 5xx, is `ServiceUnavailable` (the person is told
to try again); anything it refuses, or that does not verify, is `SsoError`.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import jwt
import requests

from upstream.domain.practice.sso import SsoError, SsoSettings
from upstream.ports import ServiceUnavailable

TIMEOUT_SECONDS = 10
# A discovery document or key set is a few KiB; an ID token exchange answer likewise.
MAX_BODY = 256 * 1024
# Keys rotate: a provider publishes the new key before it signs with it (OIDC Core 10.1), so
# an hour's cache with a refetch on an unknown `kid` follows a rotation without a restart.
CACHE_SECONDS = 3600
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")
# Clocks differ between the provider and Cloud Functions; a minute is the usual allowance.
LEEWAY_SECONDS = 60


@dataclass(frozen=True, slots=True)
class Endpoints:
    issuer: str
    authorization: str
    token: str
    jwks: str


def _json(response: requests.Response, what: str) -> dict[str, Any]:
    if response.status_code >= 500:
        raise ServiceUnavailable(f"the provider's {what} answered {response.status_code}")
    body = b""
    for chunk in response.iter_content(64 * 1024):
        body += chunk
        if len(body) > MAX_BODY:
            raise SsoError(f"{what} too large")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise SsoError(f"{what} not a JSON object (HTTP {response.status_code})")
    if not response.ok:
        error = str(data.get("error") or f"HTTP_{response.status_code}")[:60]
        raise SsoError(f"{what} refused: {error}")
    return data


class OidcProvider:
    """One instance per function process: discovery documents and key sets are cached."""

    def __init__(self, session: requests.Session | None = None) -> None:
        self._http = session or requests.Session()
        self._lock = threading.Lock()
        self._discovered: dict[str, tuple[float, Endpoints]] = {}
        self._keys: dict[str, tuple[float, jwt.PyJWKSet]] = {}

    def _get(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = self._http.get(url, timeout=TIMEOUT_SECONDS, stream=True,
                                      allow_redirects=False)
        except requests.RequestException as exc:
            raise ServiceUnavailable(f"the provider's {what} did not answer") from exc
        with response:
            return _json(response, what)

    def endpoints(self, settings: SsoSettings) -> Endpoints:
        with self._lock:
            cached = self._discovered.get(settings.issuer)
        if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        data = self._get(settings.issuer + "/.well-known/openid-configuration", "discovery")
        if data.get("issuer") != settings.issuer:
            raise SsoError("discovery names another issuer")
        try:
            found = Endpoints(settings.issuer, str(data["authorization_endpoint"]),
                              str(data["token_endpoint"]), str(data["jwks_uri"]))
        except KeyError as exc:
            raise SsoError(f"discovery lacks {exc.args[0]}") from None
        with self._lock:
            self._discovered[settings.issuer] = (time.monotonic(), found)
        return found

    def exchange(self, endpoints: Endpoints, settings: SsoSettings, client_secret: str,
                 code: str, verifier: str, redirect_uri: str) -> str:
        """The one-time code for the ID token (a code is good once: a replay is refused)."""
        try:
            response = self._http.post(
                endpoints.token, timeout=TIMEOUT_SECONDS, stream=True, allow_redirects=False,
                auth=(settings.client_id, client_secret),
                data={"grant_type": "authorization_code", "code": code,
                      "redirect_uri": redirect_uri, "code_verifier": verifier})
        except requests.RequestException as exc:
            raise ServiceUnavailable("the provider's token endpoint did not answer") from exc
        with response:
            data = _json(response, "token endpoint")
        token = data.get("id_token")
        if not isinstance(token, str) or not token or len(token) > 16384:
            raise SsoError("no ID token in the answer")
        return token

    def _key_set(self, endpoints: Endpoints, fresh: bool) -> jwt.PyJWKSet:
        with self._lock:
            cached = self._keys.get(endpoints.jwks)
        if cached and not fresh and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        try:
            keys = jwt.PyJWKSet.from_dict(self._get(endpoints.jwks, "key set"))
        except jwt.PyJWTError as exc:
            raise SsoError(f"key set unusable: {type(exc).__name__}") from None
        with self._lock:
            self._keys[endpoints.jwks] = (time.monotonic(), keys)
        return keys

    def _signing_key(self, endpoints: Endpoints, kid: str) -> jwt.PyJWK:
        for fresh in (False, True):
            keys = self._key_set(endpoints, fresh).keys
            for key in keys:
                # A provider with one key may leave `kid` out (RFC 7515 4.1.4: optional).
                if key.key_id == kid or (not kid and len(keys) == 1):
                    return key
        raise SsoError("signed with a key the provider does not publish")

    def verify(self, endpoints: Endpoints, settings: SsoSettings, id_token: str) -> dict[str, Any]:
        """The ID token's claims once its signature, issuer, audience and times hold."""
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise SsoError("ID token malformed") from None
        if header.get("alg") not in ALGORITHMS:
            raise SsoError("ID token algorithm refused")
        key = self._signing_key(endpoints, str(header.get("kid") or ""))
        try:
            return jwt.decode(id_token, key, algorithms=list(ALGORITHMS),
                              audience=settings.client_id, issuer=settings.issuer,
                              leeway=LEEWAY_SECONDS,
                              options={"require": ["exp", "iat", "iss", "aud", "sub"]})
        except jwt.PyJWTError as exc:
            raise SsoError(f"ID token refused: {type(exc).__name__}") from None
