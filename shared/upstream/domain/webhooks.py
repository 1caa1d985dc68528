"""What the webhook receivers need to know before anything is stored (DESIGN Contract 3):
signatures checked on the raw bytes, and just enough of the notification to deduplicate.

No FHIR library here on purpose: validating a resource costs about 0.8 ms (measured), and the
receivers must answer in well under 2 s whatever arrives; full parsing happens downstream.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from upstream.domain import safe_json

MAX_BODY_BYTES = 1 << 20
# Contract 3b: a signed request more than five minutes from our clock is a replay.
TIMESTAMP_TOLERANCE_SECONDS = 300
EHR_RESOURCES = frozenset({"Claim", "ClaimResponse", "ExplanationOfBenefit", "Coverage",
                           "Bundle"})
NOTIFICATION_PROFILE_TYPES = frozenset({"history", "subscription-notification"})


class BadNotification(ValueError):
    """A body that is not what the protocol sends; `reason` is a stable key."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _hex_hmac(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def _matches(header: str | None, message: bytes, secrets: Sequence[bytes]) -> bool:
    """Constant-time comparison against every valid secret (during a rotation, the old and
    the new one both verify). Every secret is tried even after a match, so the time taken
    does not tell which one matched."""
    if not header or not header.startswith("sha256=") or not secrets:
        return False
    given = header.removeprefix("sha256=").strip().lower().encode()
    found = False
    for secret in secrets:
        found |= hmac.compare_digest(given, _hex_hmac(secret, message).encode())
    return found


def verify_hub_signature(raw: bytes, header: str | None, secrets: Sequence[bytes]) -> bool:
    """athenahealth: `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>`."""
    return _matches(header, raw, secrets)


def parse_timestamp(value: str | None) -> datetime | None:
    if not value:
        return None
    text = value.strip()
    try:
        if text.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(text), UTC)
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def sign_timestamped(raw: bytes, timestamp: str, secret: bytes) -> str:
    """The `X-Signature` of Contract 3b: what we check inbound, we send outbound."""
    return "sha256=" + _hex_hmac(secret, timestamp.encode() + b"." + raw)


def verify_ehr_signature(raw: bytes, timestamp: str | None, header: str | None,
                         secrets: Sequence[bytes], now: datetime) -> bool:
    """Generic EHR: HMAC over `<X-Timestamp>.<raw body>`, timestamp within five minutes."""
    stamp = parse_timestamp(timestamp)
    if stamp is None or abs((now - stamp).total_seconds()) > TIMESTAMP_TOLERANCE_SECONDS:
        return False
    return _matches(header, (timestamp or "").strip().encode() + b"." + raw, secrets)


@dataclass(frozen=True, slots=True)
class NotificationEvent:
    event_id: str
    timestamp: str | None
    focus: str | None  # a reference (`Claim/123`) or an identifier value


@dataclass(frozen=True, slots=True)
class Notification:
    subscription: str | None
    topic: str | None
    events: list[NotificationEvent]

    def practice_ids(self) -> set[str]:
        """athenahealth identifiers name the practice: `urn:athenahealth:athenanet:claim:
        a-<practice>.<…>`; the ids found, to cross-check against the tenant."""
        found = set()
        for event in self.events:
            focus = event.focus or ""
            marker = focus.rpartition(":")[2]
            if marker.startswith("a-") and "." in marker:
                found.add(marker[2:].split(".", 1)[0])
        return found


def _json(raw: bytes) -> dict[str, Any]:
    try:
        return safe_json.loads_object(raw)
    except safe_json.UnsafeJson as exc:
        raise BadNotification("invalid_json", exc.detail) from None


def _focus(item: dict[str, Any]) -> str | None:
    focus = item.get("focus") or item.get("valueReference")
    if not isinstance(focus, dict):
        return None
    identifier = focus.get("identifier")
    if isinstance(identifier, dict) and identifier.get("value"):
        return f"{identifier.get('system', '')}:{identifier['value']}".lstrip(":")
    reference = focus.get("reference")
    return str(reference) if reference else None


def _event_id(item: dict[str, Any], subscription: str | None, number: Any) -> str:
    if isinstance(item.get("id"), str) and item["id"]:
        return str(item["id"])
    if number in (None, ""):
        raise BadNotification("missing_event_id", "a notification event has no id or number")
    return f"{subscription or ''}#{number}"


def _from_status(status: dict[str, Any]) -> Notification:
    """R4B/R5 `SubscriptionStatus`."""
    subscription = (status.get("subscription") or {}).get("reference")
    events = []
    for item in status.get("notificationEvent") or []:
        if not isinstance(item, dict):
            raise BadNotification("invalid_notification", "notificationEvent is not an object")
        events.append(NotificationEvent(_event_id(item, subscription, item.get("eventNumber")),
                                        item.get("timestamp"), _focus(item)))
    return Notification(subscription, status.get("topic"), events)


def _from_parameters(parameters: dict[str, Any]) -> Notification:
    """R4 backport: `Parameters` with `notification-event` parts."""
    params = [p for p in parameters.get("parameter") or [] if isinstance(p, dict)]

    def value(name: str) -> Any:
        for p in params:
            if p.get("name") == name:
                return next((v for k, v in p.items() if k.startswith("value")), None)
        return None

    subscription_ref = value("subscription")
    subscription = subscription_ref.get("reference") if isinstance(subscription_ref, dict) else None
    events = []
    for p in params:
        if p.get("name") != "notification-event":
            continue
        parts = {q.get("name"): q for q in p.get("part") or [] if isinstance(q, dict)}
        number = (parts.get("event-number") or {}).get("valueString")
        stamp = (parts.get("timestamp") or {}).get("valueInstant")
        focus = _focus({"focus": (parts.get("focus") or {}).get("valueReference")})
        events.append(NotificationEvent(_event_id(p, subscription, number), stamp, focus))
    return Notification(subscription, value("topic"), events)


def parse_notification(raw: bytes) -> Notification:
    """A subscription-notification Bundle → its events. Raises `BadNotification`."""
    body = _json(raw)
    if body.get("resourceType") != "Bundle" or body.get("type") not in (
            NOTIFICATION_PROFILE_TYPES):
        raise BadNotification("not_a_notification",
                              "expected a Bundle of type history (subscription notification)")
    entries = body.get("entry")
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        raise BadNotification("not_a_notification", "the Bundle has no entries")
    first = entries[0].get("resource")
    kind = first.get("resourceType") if isinstance(first, dict) else None
    if kind == "SubscriptionStatus":
        notification = _from_status(first)  # type: ignore[arg-type]
    elif kind == "Parameters":
        notification = _from_parameters(first)  # type: ignore[arg-type]
    else:
        raise BadNotification("not_a_notification",
                              "entry[0] is neither SubscriptionStatus nor Parameters")
    return notification


def ehr_resource_type(raw: bytes) -> str:
    """The resourceType of a generic EHR body. JSON without one is not FHIR (refused); a FHIR
    type the pipeline does not map is the caller's to accept and ignore (`is_mapped`)."""
    kind = _json(raw).get("resourceType")
    if not isinstance(kind, str) or not kind.isalpha():
        raise BadNotification("not_fhir", "the body has no FHIR resourceType")
    return kind


def is_mapped(resource_type: str) -> bool:
    return resource_type in EHR_RESOURCES
