"""Who is calling the JSON API: an API key (`Bearer upk_…`, machines) or a person's
Identity Platform ID token (`Bearer <JWT>`, Contract 6). One answer for every refusal of
either kind (unknown, wrong, revoked, expired, disabled, another product's user): no oracle.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from upstream.domain.api_keys import allows, parse_bearer
from upstream.domain.practice import people
from upstream.domain.practice.people import Principal

# An ID token is three base64url parts; Identity Platform's run to about 1 KB, and a header
# far beyond that is not a token (nor worth handing to a JWT parser).
MAX_TOKEN = 8 * 1024


class TokenVerifier(Protocol):
    def verify_id_token(self, token: str) -> Principal | None: ...


class KeyLookup(Protocol):
    def key(self, key_id: str) -> dict[str, Any] | None: ...


def bearer(headers: Mapping[str, str]) -> str | None:
    header = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":  # schemes are case-insensitive (RFC 9110 §11.1)
        return None
    return token.strip() or None


def _looks_like_jwt(token: str) -> bool:
    return len(token) <= MAX_TOKEN and token.count(".") == 2 and token.isascii()


def authenticate(headers: Mapping[str, str], keys: KeyLookup, tokens: TokenVerifier | None,
                 now: datetime) -> Principal | None:
    token = bearer(headers)
    if token is None:
        return None
    if token.startswith("upk_"):
        parsed = parse_bearer("Bearer " + token)
        stored = keys.key(parsed[0]) if parsed else None
        if parsed is None or stored is None \
                or allows(stored, parsed[1], "read", now) == "unauthenticated":
            return None
        return people.for_key(str(stored["customer_id"]), parsed[0],
                              list(stored.get("scopes") or []))
    if tokens is None or not _looks_like_jwt(token):
        return None
    return tokens.verify_id_token(token)
