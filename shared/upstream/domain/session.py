"""Dashboard sessions that fit Cloud Functions: no server-side session store, a signed cookie.

Signing in trades an API key (pasted once) for a cookie `<payload>.<HMAC-SHA256>` holding the
tenant, the key id, the key's scopes and an expiry. Functions scale out and restart, so any
instance must verify any cookie with one shared secret (Secret Manager, `dashboard-session-key`)
and nothing else. The key behind a session is looked up again on every request, so revoking
the key ends its sessions at once; the cookie cannot outlive `SESSION_HOURS` either.

Forms carry a CSRF token: an HMAC of the session's nonce under the same secret, so a page on
another site cannot post for a signed-in user even where SameSite=Strict is not honoured.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

# A working day: a billing manager signs in once in the morning, not every hour; a cookie
# left on a shared front-desk PC is dead by the next day.
SESSION_HOURS = 10
COOKIE = "upstream_session"


@dataclass(frozen=True, slots=True)
class Session:
    customer_id: str
    key_id: str
    scopes: tuple[str, ...]
    expires: datetime
    nonce: str

    @property
    def can_write(self) -> bool:
        return "write" in self.scopes


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, message: str) -> str:
    return _b64(hmac.new(secret, message.encode(), hashlib.sha256).digest())


def issue(secret: bytes, customer_id: str, key_id: str, scopes: list[str],
          now: datetime) -> tuple[str, Session]:
    """The cookie value and the session it stands for."""
    session = Session(customer_id, key_id, tuple(sorted(scopes)),
                      now + timedelta(hours=SESSION_HOURS), secrets.token_hex(12))
    payload = _b64(json.dumps({"c": session.customer_id, "k": session.key_id,
                               "s": list(session.scopes), "e": int(session.expires.timestamp()),
                               "n": session.nonce}, separators=(",", ":")).encode())
    return f"{payload}.{_mac(secret, payload)}", session


def verify(secret: bytes, cookie: str | None, now: datetime) -> Session | None:
    """The session, or None for anything forged, truncated, expired or malformed."""
    if not cookie or cookie.count(".") != 1 or len(cookie) > 1024:
        return None
    payload, mac = cookie.split(".")
    if not hmac.compare_digest(_mac(secret, payload).encode(), mac.encode("utf-8", "replace")):
        return None
    try:
        data = json.loads(_unb64(payload))
        expires = datetime.fromtimestamp(int(data["e"]), tz=now.tzinfo)
        session = Session(str(data["c"]), str(data["k"]), tuple(str(s) for s in data["s"]),
                          expires, str(data["n"]))
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
    return session if session.expires > now else None


def csrf_token(secret: bytes, seed: str) -> str:
    """The form token of a session: `seed` is the key session's nonce, or a person's session
    subject and issue time (`adapters/identity.py`); never sent in a form itself."""
    return _mac(secret, f"csrf\x1f{seed}")


def csrf_ok(secret: bytes, seed: str, token: str | None) -> bool:
    return bool(seed) and bool(token) and hmac.compare_digest(
        csrf_token(secret, seed).encode(), str(token).encode("utf-8", "replace"))
