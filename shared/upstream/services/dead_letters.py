"""Decoding a Pub/Sub CloudEvent, or dead-lettering it with the reason.

A message no retry can make valid goes straight to `<topic>-dlq` with its original payload
and the reason in its attributes: visible where operators look, and not retried five times
first (the subscription's own dead-letter policy catches the failures a retry might fix).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import TypeVar

from pydantic import ValidationError

from upstream.events import CloudEventLike
from upstream.logs import get_logger
from upstream.ports import Publisher

log = get_logger(__name__)
T = TypeVar("T")
UNDECODABLE = (ValidationError, KeyError, TypeError, ValueError, binascii.Error)


def _payload(event: CloudEventLike) -> bytes:
    data = event.data if isinstance(event.data, dict) else {}
    raw = str(data.get("message", {}).get("data", ""))
    try:
        return base64.b64decode(raw, validate=True)
    except binascii.Error:
        return raw.encode()


def decode_or_dead_letter(event: CloudEventLike, decode: Callable[[CloudEventLike], T],
                          publisher: Publisher, topic: str, reason: str) -> T | None:
    """The decoded message, or None once it is on `<topic>-dlq` with `reason`."""
    try:
        return decode(event)
    except UNDECODABLE as exc:
        detail = str(exc)[:500]
        publisher.publish(f"{topic}-dlq", _payload(event), {"reason": reason, "detail": detail})
        log.error("undecodable message dead-lettered", extra={"reason": reason,
                                                              "topic": topic, "detail": detail})
        return None
