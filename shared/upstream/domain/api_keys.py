"""Per-tenant API keys: `upk_<key id>_<secret>`, shown once, stored as the SHA-256 of the
secret (the secret is 256 random bits, so a fast hash is enough: there is nothing to
brute-force), scoped (`read`, `write`), revocable, optionally expiring.

The key id finds the stored key without a query; the secret is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Scope = Literal["read", "write"]
_TOKEN = re.compile(r"^upk_(?P<id>[0-9a-f]{16})_(?P<secret>[A-Za-z0-9_-]{43})$")


@dataclass(frozen=True, slots=True)
class NewKey:
    token: str  # shown once to whoever created it
    key_id: str
    secret_hash: str


def new_key() -> NewKey:
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return NewKey(f"upk_{key_id}_{secret}", key_id, hash_secret(secret))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_bearer(header: str | None) -> tuple[str, str] | None:
    """(key id, secret) from `Authorization: Bearer upk_…`, or None."""
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":  # auth schemes are case-insensitive (RFC 9110 §11.1)
        return None
    match = _TOKEN.match(token.strip())
    return (match["id"], match["secret"]) if match else None


def allows(stored: dict[str, Any] | None, secret: str, scope: Scope,
           now: datetime) -> Literal["ok", "unauthenticated", "forbidden"]:
    """`unauthenticated` for an unknown, wrong, revoked or expired key (one answer for all:
    no oracle), `forbidden` for a good key without the scope."""
    expected = str((stored or {}).get("secret_hash") or "0" * 64)
    matches = hmac.compare_digest(expected, hash_secret(secret))
    if stored is None or not matches or not key_usable(stored, now):
        return "unauthenticated"
    scopes = set(stored.get("scopes") or [])
    if scope not in scopes and not (scope == "read" and "write" in scopes):
        return "forbidden"
    return "ok"


def key_usable(stored: dict[str, Any], now: datetime) -> bool:
    """Neither revoked nor expired (what a dashboard session re-checks on every page)."""
    expires = stored.get("expires_at")
    return not stored.get("revoked_at") and (expires is None or expires > now)
