"""Page tokens of the JSON API: the last id of a page, URL-safe base64, so a client passes it
back untouched. Each route decides which decoded ids it accepts."""

from __future__ import annotations

import base64
import binascii


def encode(last_id: str | None) -> str | None:
    return base64.urlsafe_b64encode(last_id.encode()).decode() if last_id else None


def decode(token: str) -> str:
    """The id a token carries; "" for anything that is not base64 of printable text of at
    most 100 characters."""
    try:
        decoded = base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ""
    return decoded if decoded.isprintable() and len(decoded) <= 100 else ""
