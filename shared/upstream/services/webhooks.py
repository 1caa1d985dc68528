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
import hashlib
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from google.api_core import exceptions as gexc
from pydantic import BaseModel, ConfigDict

from upstream.domain.rate_limit import RateLimiter
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
from upstream.ports import (
    IdempotencyStore,
    Publisher,
    SecretStore,
    ServiceUnavailable,
    TenantDirectory,
)
from upstream.services.tenants import athena_secret, webhook_secret

log = get_logger(__name__)

# athenahealth retries for an hour and can replay its dead-letter queue for 7 days.
ATHENA_KEY_DAYS = 8
EHR_KEY_HOURS = 24
# Per tenant and function instance. A 20-provider practice's EHR sends a few events a minute
# and bursts of a few hundred when a batch of claims is billed; 300/s (burst 600) is far above
# that, and above the 200/s the webhook benchmark sends one instance without an error.
DEFAULT_RATE_PER_SECOND = 300.0
DEFAULT_BURST = 600.0
_CUSTOMER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_MAX_KEY = 200
PROBLEM = "application/problem+json"
# What an outage raises through our adapters (Google's clients, sockets, Identity Platform):
# answered 503 or retried, never a 500.
INFRASTRUCTURE = (gexc.GoogleAPICallError, gexc.RetryError, ConnectionError, TimeoutError,
                  ServiceUnavailable)


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
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(
        DEFAULT_RATE_PER_SECOND, DEFAULT_BURST, time.monotonic))


@dataclass(frozen=True, slots=True)
class Received:
    """What a connector found in a verified body: the events' idempotency keys and how to
    build the message for the new ones (by their positions)."""

    keys: list[str]
    message: Callable[[list[int]], EhrEvent]
    ignored: Answer | None = None  # a valid body with nothing for us (heartbeat, other type)
    # A key derived from the signed bytes, for protocols whose event id is not signed: a
    # captured request replayed under a new event id still finds this key taken.
    replay_key: str | None = None


class Connector(Protocol):
    """One EHR's webhook protocol. A new EHR is one of these; `receive` does the rest
    (size limit, tenant, secrets, rate limit, idempotency, publishing, answers)."""

    name: str
    key_ttl: timedelta

    def tenant(self, path_customer: str | None, headers: Mapping[str, str]) -> str | None: ...

    def secret_name(self, customer_id: str) -> str: ...

    def verify(self, raw: bytes, headers: Mapping[str, str], secrets: Sequence[bytes],
               now: datetime) -> bool: ...

    def parse(self, customer_id: str, tenant: dict[str, Any], raw: bytes,
              headers: Mapping[str, str], now: datetime) -> Received:
        """Raises `BadNotification` for a malformed body, `Unauthorized` for a body that
        authenticates but names someone else's data."""
        ...


class Unauthorized(Exception):
    pass


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


class AthenaConnector:
    """athenahealth FHIR Subscriptions (R5 backport): tenant in the path, `X-Hub-Signature`
    over the raw body, id-only events keyed by `notificationEvent.id` for 8 days."""

    name = "athena"
    key_ttl = timedelta(days=ATHENA_KEY_DAYS)

    def tenant(self, path_customer: str | None, headers: Mapping[str, str]) -> str | None:
        return path_customer

    def secret_name(self, customer_id: str) -> str:
        return athena_secret(customer_id)

    def verify(self, raw: bytes, headers: Mapping[str, str], secrets: Sequence[bytes],
               now: datetime) -> bool:
        return verify_hub_signature(raw, _header(headers, "X-Hub-Signature"), secrets)

    def parse(self, customer_id: str, tenant: dict[str, Any], raw: bytes,
              headers: Mapping[str, str], now: datetime) -> Received:
        notification = parse_notification(raw)
        practice = tenant.get("athena_practice_id")
        if practice and notification.practice_ids() - {str(practice)}:
            raise Unauthorized("practice_mismatch")
        events = notification.events
        return Received(
            keys=[f"athena|{customer_id}|{e.event_id}" for e in events],
            message=lambda fresh: EhrEvent(
                source="athena", customer_id=customer_id, received_at=now,
                events=[{"event_id": events[i].event_id, "timestamp": events[i].timestamp,
                         "focus": events[i].focus, "topic": notification.topic}
                        for i in fresh]),
            # handshake and heartbeat notifications carry no events
            ignored=None if events else Answer(200, {"status": "accepted", "events": 0}))


class GenericEhrConnector:
    """Every other EHR or FHIR server (Contract 3b): tenant in `X-Customer-ID`, HMAC over
    `<X-Timestamp>.<body>` (5-minute window), `X-Idempotency-Key` kept 24 h, full resources."""

    name = "ehr"
    key_ttl = timedelta(hours=EHR_KEY_HOURS)

    def tenant(self, path_customer: str | None, headers: Mapping[str, str]) -> str | None:
        return _header(headers, "X-Customer-ID")

    def secret_name(self, customer_id: str) -> str:
        return webhook_secret(customer_id)

    def verify(self, raw: bytes, headers: Mapping[str, str], secrets: Sequence[bytes],
               now: datetime) -> bool:
        return verify_ehr_signature(raw, _header(headers, "X-Timestamp"),
                                    _header(headers, "X-Signature"), secrets, now)

    def parse(self, customer_id: str, tenant: dict[str, Any], raw: bytes,
              headers: Mapping[str, str], now: datetime) -> Received:
        event_key = (_header(headers, "X-Idempotency-Key") or "").strip()
        if not event_key or len(event_key) > _MAX_KEY:
            raise BadNotification("missing_idempotency_key",
                                  f"X-Idempotency-Key is required: 1 to {_MAX_KEY} characters")
        kind = ehr_resource_type(raw)
        ignored = None
        if not is_mapped(kind):  # valid FHIR we do not map: accepted, ignored, counted in logs
            log.info("ehr resource ignored", extra={"customer_id": customer_id,
                                                    "ignored_resource_type": kind})
            ignored = Answer(200, {"status": "ignored", "resource_type": kind})
        signed = hashlib.sha256((_header(headers, "X-Timestamp") or "").strip().encode()
                                + b"." + raw).hexdigest()
        return Received(
            keys=[f"ehr|{customer_id}|{event_key}"],
            replay_key=f"ehr-signed|{customer_id}|{signed}",
            message=lambda _: EhrEvent(
                source="ehr", customer_id=customer_id, received_at=now,
                events=[{"event_id": event_key}], resource_type=kind,
                resource_b64=base64.b64encode(raw).decode()),
            ignored=ignored)


ATHENA = AthenaConnector()
GENERIC_EHR = GenericEhrConnector()


def _active_tenant(deps: WebhookDeps, customer_id: str | None) -> dict[str, Any] | None:
    if not customer_id or not _CUSTOMER.match(customer_id):
        return None
    tenant = deps.tenants.get(customer_id)
    return tenant if tenant and tenant.get("status", "active") == "active" else None


def _rate_limited(deps: WebhookDeps, customer_id: str, tenant: dict[str, Any]) -> Answer | None:
    """Per-tenant overrides (`webhook_rate_per_second`, `webhook_burst`) for a practice that
    legitimately sends more, e.g. an initial backfill."""
    wait = deps.limiter.take(customer_id, tenant.get("webhook_rate_per_second"),
                             tenant.get("webhook_burst"))
    if not wait:
        return None
    log.warning("webhook rate limited", extra={"customer_id": customer_id})
    limited = problem(429, "rate-limited", "Too many requests for this tenant")
    return Answer(429, limited.body, PROBLEM, {"Retry-After": str(int(wait))})


def _publish_new(deps: WebhookDeps, connector: Connector, customer_id: str,
                 received: Received, now: datetime) -> Answer:
    """Claims the keys, publishes what was new, answers."""
    keys, expire_at = received.keys, now + connector.key_ttl
    replay = received.replay_key
    try:
        if replay is not None and not deps.idempotency.claim(replay, expire_at, now):
            log.warning("webhook replay refused", extra={"customer_id": customer_id,
                                                         "connector": connector.name})
            return Answer(200, {"status": "duplicate", "events": len(keys)})
        fresh = [i for i, key in enumerate(keys) if deps.idempotency.claim(key, expire_at, now)]
        if not fresh:
            return Answer(200, {"status": "duplicate", "events": len(keys)})
        event = received.message(fresh)
        try:
            deps.publisher.publish(deps.ehr_topic, event.to_bytes(),
                                   {"customer_id": customer_id, "source": event.source})
        except INFRASTRUCTURE:
            for key in [keys[i] for i in fresh] + ([replay] if replay else []):
                deps.idempotency.release(key)
            raise
    except INFRASTRUCTURE as exc:
        log.error("webhook could not be recorded", extra={"customer_id": customer_id,
                                                          "error": type(exc).__name__})
        return UNAVAILABLE
    return Answer(200, {"status": "accepted", "events": len(fresh),
                        "duplicates": len(keys) - len(fresh)})


def receive(connector: Connector, path_customer: str | None, raw: bytes,
            headers: Mapping[str, str], deps: WebhookDeps) -> Answer:
    if len(raw) > MAX_BODY_BYTES:
        return TOO_LARGE
    now = deps.clock()
    customer_id = connector.tenant(path_customer, headers)
    try:
        tenant = _active_tenant(deps, customer_id)
        secrets = deps.secrets.get_recent(connector.secret_name(customer_id or "")) \
            if tenant else []
    except INFRASTRUCTURE:
        return UNAVAILABLE
    if tenant is None or customer_id is None \
            or not connector.verify(raw, headers, secrets, now):
        log.warning("webhook refused", extra={"connector": connector.name,
                                              "reason": "authentication"})
        return UNAUTHORIZED
    limited = _rate_limited(deps, customer_id, tenant)
    if limited is not None:
        return limited
    try:
        received = connector.parse(customer_id, tenant, raw, headers, now)
    except BadNotification as exc:
        return problem(400, exc.reason.replace("_", "-"), "Malformed notification", exc.detail)
    except Unauthorized as exc:
        log.warning("webhook refused", extra={"connector": connector.name, "reason": str(exc),
                                              "customer_id": customer_id})
        return UNAUTHORIZED
    if received.ignored is not None:
        return received.ignored
    return _publish_new(deps, connector, customer_id, received, now)


def receive_athena(customer_id: str, raw: bytes, headers: Mapping[str, str],
                   deps: WebhookDeps) -> Answer:
    return receive(ATHENA, customer_id, raw, headers, deps)


def receive_ehr(raw: bytes, headers: Mapping[str, str], deps: WebhookDeps) -> Answer:
    return receive(GENERIC_EHR, None, raw, headers, deps)
