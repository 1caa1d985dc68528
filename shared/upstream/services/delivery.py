"""What every notification flow shares: its dependencies, the delivery log, sending one
message with in-place retries, and recording the outcome per channel.

A send is tried a few times in place (backoff, honouring a 429's Retry-After, capped)
because most failures are brief. What still fails is recorded with its reason; if a later
try may succeed the flow raises `ChannelsFailed` at the end, so Pub/Sub redelivers the
message (and dead-letters it after five deliveries). Channels already delivered are skipped
on a redelivery by the delivery log.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol

from upstream.adapters.channels import DeliveryFailed, HttpSender, SmtpSender
from upstream.domain.aggregates import DailyCell
from upstream.domain.notify.routing import ChannelRule, NotificationSettings
from upstream.ports import Publisher, SecretStore, TenantDirectory, TenantLister
from upstream.services.tenants import slack_webhooks_secret

ATTEMPTS_IN_PLACE = 3
BACKOFF_SECONDS = (1.0, 3.0)
RETRY_AFTER_CAP_SECONDS = 10.0
LEASE_SECONDS = 120
# Slack webhook URLs are https; plain http only to this machine (the local stack and tests).
SLACK_URL_PREFIXES = ("https://", "http://127.0.0.1:", "http://localhost:")


class DeliveryLog(Protocol):
    def begin(self, customer_id: str, key: str, meta: dict[str, Any], now: datetime,
              lease_seconds: int) -> str: ...

    def finish(self, customer_id: str, key: str, status: str, now: datetime,
               error: str | None = None) -> None: ...

    def queue(self, customer_id: str, key: str, meta: dict[str, Any], now: datetime) -> None: ...

    def queued(self, customer_id: str) -> list[dict[str, Any]]: ...

    def get(self, customer_id: str, key: str) -> dict[str, Any] | None: ...

    def alerts_sent_since(self, customer_id: str, since: datetime) -> int:
        """Distinct alerts delivered at once since `since`."""
        ...


class WeeklySources(Protocol):
    """What the weekly summary (and the alert e-mail's chart) read: the week's alerts,
    aggregate cells, the authorizations."""

    def alerts_since(self, customer_id: str, since: date) -> list[dict[str, Any]]: ...

    def cells(self, customer_id: str, first: date, end: date) -> list[DailyCell]: ...

    def authorizations(self, customer_id: str) -> list[dict[str, Any]]: ...


class MonthlySources(WeeklySources, Protocol):
    """What the monthly report also reads (`services/monthly_report.py`)."""

    def claim_lines(self, customer: str, doc_ids: list[str]) -> dict[str, dict[str, Any]]: ...

    def executed_actions(self, customer_id: str, first: date, end: date) -> int: ...


class ChannelsFailed(RuntimeError):
    """Some channel may still succeed later: the message is redelivered."""


@dataclass(frozen=True, slots=True)
class DispatchDeps:
    tenants: TenantDirectory
    tenant_ids: TenantLister
    secrets: SecretStore
    deliveries: DeliveryLog
    publisher: Publisher
    smtp: Callable[[], SmtpSender | None]
    http: HttpSender
    alerts_topic: str
    dashboard_url: str
    weekly: WeeklySources | None = None
    monthly: MonthlySources | None = None  # the monthly report's sources
    pdf: Callable[[str], bytes] | None = None  # HTML → PDF (the monthly report)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    sleep: Callable[[float], None] = field(default=time.sleep)


def active_settings(deps: DispatchDeps, customer: str,
                    ) -> tuple[dict[str, Any] | None, NotificationSettings | None]:
    """(tenant, its notification rules); (None, None) for a tenant that is gone, (tenant,
    None) for rules that do not validate."""
    from pydantic import ValidationError

    tenant = deps.tenants.get(customer)
    if tenant is None or tenant.get("status", "active") != "active":
        return None, None
    try:
        return tenant, NotificationSettings.model_validate(tenant.get("notifications") or {})
    except ValidationError:
        return tenant, None


def require_smtp(deps: DispatchDeps) -> SmtpSender:
    smtp = deps.smtp()
    if smtp is None:
        raise DeliveryFailed("no SMTP server configured", True)
    return smtp


def slack_url(channel: ChannelRule, customer: str, deps: DispatchDeps) -> str:
    raw = deps.secrets.get(slack_webhooks_secret(customer))
    try:
        url = json.loads(raw)[channel.id] if raw else None
    except (ValueError, KeyError, TypeError):
        url = None
    if not isinstance(url, str) or not url.startswith(SLACK_URL_PREFIXES):
        raise DeliveryFailed(f"no Slack webhook URL for channel {channel.id}", False)
    return url


@dataclass(slots=True)
class Outcomes:
    """Per channel what happened, and which channels a redelivery should try again."""

    channels: dict[str, str] = field(default_factory=dict)
    retry_later: list[str] = field(default_factory=list)

    def raise_if_retrying(self) -> None:
        if self.retry_later:
            raise ChannelsFailed(f"will retry {self.retry_later}")


def deliver(deps: DispatchDeps, customer: str, key: str, channel_id: str,
            send: Callable[[], None], outcomes: Outcomes) -> bool:
    """Sends (with in-place retries) and records the outcome under `key`; True if sent."""
    for attempt in range(ATTEMPTS_IN_PLACE):
        try:
            send()
            break
        except DeliveryFailed as exc:
            if exc.retryable and attempt < ATTEMPTS_IN_PLACE - 1:
                wait = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)]
                if exc.retry_after is not None:
                    wait = min(exc.retry_after, RETRY_AFTER_CAP_SECONDS)
                deps.sleep(wait)
                continue
            deps.deliveries.finish(customer, key, "failed", deps.clock(), exc.reason)
            outcomes.channels[channel_id] = f"failed: {exc.reason}"
            if exc.retryable:
                outcomes.retry_later.append(channel_id)
            return False
    deps.deliveries.finish(customer, key, "delivered", deps.clock())
    outcomes.channels[channel_id] = "delivered"
    return True
