"""The two webhook receivers (DESIGN Contract 3): authenticate, deduplicate, publish to
`ehr-events`, answer fast. Nothing here parses FHIR beyond what deduplication needs.

Answers: 200 accepted/duplicate; the same 401 body for every authentication failure (unknown
tenant, missing or wrong signature, stale timestamp, another practice's events) so that no
answer tells a caller which part was wrong; 400 problem+json for malformed bodies; 413 over
1 MiB; 503 with Retry-After only when our own storage or Pub/Sub fails, so the sender retries.
Never a 5xx caused by the input.

Order of effects: each new event's idempotency key is claimed, then the batch is published;
if publishing fails the keys are released and the sender's retry publishes it. A concurrent
duplicate that sees a claimed key answers "duplicate"; the first delivery still publishes.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from google.api_core import exceptions as gexc
from pydantic import BaseModel, ConfigDict

from upstream.domain.webhooks import (
    MAX_BODY_BYTES,
    BadNotification,
    ehr_resource_type,
    is_mapped,
    parse_notification,
    verify_ehr_signature,
    verify_hub_signature,
)
from upstream.logs import get_logger
from upstream.ports import IdempotencyStore, Publisher, SecretStore, TenantDirectory
from upstream.services.tenants import athena_secret, webhook_secret

log = get_logger(__name__)

# athenahealth retries for an hour and can replay its dead-letter queue for 7 days.
ATHENA_KEY_DAYS = 8
EHR_KEY_HOURS = 24
_CUSTOMER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_MAX_KEY = 200
PROBLEM = "application/problem+json"
INFRASTRUCTURE = (gexc.GoogleAPICallError, gexc.RetryError, ConnectionError, TimeoutError)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: dict[str, Any]
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def problem(status: int, kind: str, title: str, detail: str | None = None) -> Answer:
    body: dict[str, Any] = {"type": f"https://upstream.dev/problems/{kind}", "title": title,
                            "status": status}
    if detail:
        body["detail"] = detail
    return Answer(status, body, PROBLEM)


UNAUTHORIZED = problem(401, "unauthorized", "Authentication failed")
TOO_LARGE = problem(413, "too-large", "Body over 1 MiB")
UNAVAILABLE = Answer(503, problem(503, "unavailable", "Try again shortly").body, PROBLEM,
                     {"Retry-After": "10"})


class EhrEvent(BaseModel):
    """Published on `ehr-events`: athenahealth's id-only events, or one full resource."""

    model_config = ConfigDict(frozen=True)
    version: Literal[1] = 1
    source: Literal["athena", "ehr"]
    customer_id: str
    received_at: datetime
    events: list[dict[str, Any]] = []
    resource_type: str | None = None
    resource_b64: str | None = None  # the raw body as received (≤ 1 MiB)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_cloud_event(cls, event: Any) -> EhrEvent:
        return cls.model_validate_json(base64.b64decode(event.data["message"]["data"]))


@dataclass(frozen=True, slots=True)
class WebhookDeps:
    tenants: TenantDirectory
    secrets: SecretStore
    idempotency: IdempotencyStore
    publisher: Publisher
    ehr_topic: str
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def _active_tenant(deps: WebhookDeps, customer_id: str | None) -> dict[str, Any] | None:
    if not customer_id or not _CUSTOMER.match(customer_id):
        return None
    tenant = deps.tenants.get(customer_id)
    return tenant if tenant and tenant.get("status", "active") == "active" else None


def _publish_new(deps: WebhookDeps, keys: list[str], expire_at: datetime, now: datetime,
                 message: Callable[[list[int]], EhrEvent], customer_id: str) -> Answer:
    """Claims the keys, publishes what was new, answers."""
    try:
        fresh = [i for i, key in enumerate(keys) if deps.idempotency.claim(key, expire_at, now)]
        if not fresh:
            return Answer(200, {"status": "duplicate", "events": len(keys)})
        event = message(fresh)
        try:
            deps.publisher.publish(deps.ehr_topic, event.to_bytes(),
                                   {"customer_id": customer_id, "source": event.source})
        except INFRASTRUCTURE:
            for i in fresh:
                deps.idempotency.release(keys[i])
            raise
    except INFRASTRUCTURE as exc:
        log.error("webhook could not be recorded", extra={"customer_id": customer_id,
                                                          "error": type(exc).__name__})
        return UNAVAILABLE
    return Answer(200, {"status": "accepted", "events": len(fresh),
                        "duplicates": len(keys) - len(fresh)})


def receive_athena(customer_id: str, raw: bytes, headers: Mapping[str, str],
                   deps: WebhookDeps) -> Answer:
    if len(raw) > MAX_BODY_BYTES:
        return TOO_LARGE
    try:
        tenant = _active_tenant(deps, customer_id)
        secrets = deps.secrets.get_recent(athena_secret(customer_id)) if tenant else []
    except INFRASTRUCTURE:
        return UNAVAILABLE
    if tenant is None or not verify_hub_signature(raw, _header(headers, "X-Hub-Signature"),
                                                  secrets):
        log.warning("athena webhook refused", extra={"reason": "authentication"})
        return UNAUTHORIZED
    try:
        notification = parse_notification(raw)
    except BadNotification as exc:
        return problem(400, exc.reason.replace("_", "-"), "Malformed notification", exc.detail)
    practice = tenant.get("athena_practice_id")
    if practice and notification.practice_ids() - {str(practice)}:
        log.warning("athena webhook refused", extra={"reason": "practice_mismatch",
                                                     "customer_id": customer_id})
        return UNAUTHORIZED
    if not notification.events:  # handshake and heartbeat notifications carry no events
        return Answer(200, {"status": "accepted", "events": 0})
    now = deps.clock()
    keys = [f"athena|{customer_id}|{e.event_id}" for e in notification.events]
    return _publish_new(
        deps, keys, now + timedelta(days=ATHENA_KEY_DAYS), now,
        lambda fresh: EhrEvent(
            source="athena", customer_id=customer_id, received_at=now,
            events=[{"event_id": notification.events[i].event_id,
                     "timestamp": notification.events[i].timestamp,
                     "focus": notification.events[i].focus,
                     "topic": notification.topic} for i in fresh]), customer_id)


def receive_ehr(raw: bytes, headers: Mapping[str, str], deps: WebhookDeps) -> Answer:
    if len(raw) > MAX_BODY_BYTES:
        return TOO_LARGE
    customer_id = _header(headers, "X-Customer-ID")
    event_key = (_header(headers, "X-Idempotency-Key") or "").strip()
    now = deps.clock()
    try:
        tenant = _active_tenant(deps, customer_id)
        secrets = deps.secrets.get_recent(webhook_secret(customer_id or "")) if tenant else []
    except INFRASTRUCTURE:
        return UNAVAILABLE
    if tenant is None or not verify_ehr_signature(
            raw, _header(headers, "X-Timestamp"), _header(headers, "X-Signature"), secrets, now):
        log.warning("ehr webhook refused", extra={"reason": "authentication"})
        return UNAUTHORIZED
    assert customer_id is not None
    if not event_key or len(event_key) > _MAX_KEY:
        return problem(400, "missing-idempotency-key", "X-Idempotency-Key is required",
                       f"1 to {_MAX_KEY} characters")
    try:
        kind = ehr_resource_type(raw)
    except BadNotification as exc:
        return problem(400, exc.reason.replace("_", "-"), "Not a FHIR resource", exc.detail)
    if not is_mapped(kind):  # valid FHIR we do not map: accepted, ignored, counted in logs
        log.info("ehr resource ignored", extra={"customer_id": customer_id,
                                                "ignored_resource_type": kind})
        return Answer(200, {"status": "ignored", "resource_type": kind})
    return _publish_new(
        deps, [f"ehr|{customer_id}|{event_key}"], now + timedelta(hours=EHR_KEY_HOURS), now,
        lambda _: EhrEvent(source="ehr", customer_id=customer_id, received_at=now,
                           events=[{"event_id": event_key}], resource_type=kind,
                           resource_b64=base64.b64encode(raw).decode()), customer_id)
