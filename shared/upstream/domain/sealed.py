"""Short-lived values the browser carries between two steps of a sign-in (the single sign-on
round trip, the pending second factor): `<payload>.<HMAC-SHA256>` under the dashboard's
session key, with the purpose inside the MAC, so a value sealed for one step can never pass
for another step's, nor for a session cookie or a CSRF token.

Nothing is stored server-side: any function instance opens what any other sealed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

MAX_SEALED = 2048


class Unsealed(ValueError):
    """Forged, altered, expired, malformed, or sealed for another purpose."""


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, purpose: str, payload: str) -> str:
    return b64(hmac.new(secret, f"{purpose}\x1f{payload}".encode(), hashlib.sha256).digest())


def seal(secret: bytes, purpose: str, fields: dict[str, Any], expires: datetime) -> str:
    payload = b64(json.dumps({**fields, "_e": int(expires.timestamp())},
                             separators=(",", ":")).encode())
    return f"{payload}.{_mac(secret, purpose, payload)}"


def unseal(secret: bytes, purpose: str, sealed: str | None,
           now: datetime) -> tuple[dict[str, Any], datetime]:
    """The fields and their expiry, or Unsealed (the reason in its message, for the log)."""
    if not sealed or sealed.count(".") != 1 or len(sealed) > MAX_SEALED:
        raise Unsealed("missing")
    payload, mac = sealed.split(".")
    if not hmac.compare_digest(_mac(secret, purpose, payload).encode(),
                               mac.encode("utf-8", "replace")):
        raise Unsealed("forged")
    try:
        data = json.loads(_unb64(payload))
        expires = int(data.pop("_e"))
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        raise Unsealed("malformed") from None
    if not isinstance(data, dict) or expires <= now.timestamp():
        raise Unsealed("expired")
    return data, datetime.fromtimestamp(expires, tz=now.tzinfo)
