"""The `alert_dispatcher` use-case: an alert on the `alerts` topic → the tenant's channels.

Per channel the tenant's rules decide now, the next digest, or not at all
(`domain/notify/routing.py`). A send is tried a few times in place (backoff, honouring a
429's Retry-After) because most failures are brief; what still fails is recorded with its
reason and, if a later try may succeed, raised, so Pub/Sub redelivers the alert (and
dead-letters it after five deliveries, visible in `alerts-dlq`). Channels already delivered
are skipped on a redelivery: each alert reaches each channel once (per severity: an
escalation is news). An alert for a tenant that no longer exists is acknowledged and logged.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, Protocol

from google.api_core import exceptions as gexc
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from upstream.adapters.channels import DeliveryFailed, HttpSender, SmtpSender
from upstream.domain.aggregates import DailyCell
from upstream.domain.detect.findings import DENIAL_TYPES
from upstream.domain.notify.chart import WEEKS, render_png, weekly_points
from upstream.domain.notify.render import (
    digest_email,
    digest_slack,
    email_message,
    slack_message,
    webhook_request,
)
from upstream.domain.notify.routing import (
    SEVERITY_ORDER as SEVERITY_RANK,
)
from upstream.domain.notify.routing import (
    ChannelRule,
    NotificationSettings,
    plan,
)
from upstream.domain.notify.weekly import PRIOR_WEEKS, summarize, weekly_email
from upstream.events import CloudEventLike
from upstream.logs import get_logger
from upstream.ports import Publisher, SecretStore, TenantDirectory, TenantLister
from upstream.services.dead_letters import decode_or_dead_letter
from upstream.services.tenants import outbound_webhook_secret, slack_webhooks_secret

log = get_logger(__name__)

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


class WeeklySources(Protocol):
    """What the weekly summary reads: the week's alerts, five weeks of aggregate cells, the
    authorizations."""

    def alerts_since(self, customer_id: str, since: date) -> list[dict[str, Any]]: ...

    def cells(self, customer_id: str, first: date, end: date) -> list[DailyCell]: ...

    def authorizations(self, customer_id: str) -> list[dict[str, Any]]: ...


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
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    sleep: Callable[[float], None] = field(default=time.sleep)


class SummaryRequest(BaseModel):
    """Published on `alerts` by Cloud Scheduler on Mondays (`customer: "*"`, fanned out):
    the weekly summary e-mail of the week before `week_end` (default: today)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    summary: Literal["weekly"]
    customer: str = Field(pattern=r"^(\*|[A-Za-z0-9][A-Za-z0-9_-]{0,62})$")
    week_end: date | None = None


class DigestRequest(BaseModel):
    """Published on `alerts` by Cloud Scheduler (`customer: "*"`, fanned out here one message
    per tenant): send what the digest channels and quiet hours held."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    digest: Literal["daily"]
    customer: str = Field(pattern=r"^(\*|[A-Za-z0-9][A-Za-z0-9_-]{0,62})$")
    day: date | None = None


def _decode(event: Any) -> dict[str, Any] | DigestRequest | SummaryRequest:
    alert = json.loads(base64.b64decode(event.data["message"]["data"]))
    if isinstance(alert, dict) and "digest" in alert:
        return DigestRequest.model_validate(alert)
    if isinstance(alert, dict) and "summary" in alert and "alert_id" not in alert:
        return SummaryRequest.model_validate(alert)
    if not isinstance(alert, dict) or not all(
            isinstance(alert.get(k), str) and alert.get(k)
            for k in ("alert_id", "customer_id", "type", "severity", "title")):
        raise ValueError("not a Contract 4 alert")
    return alert


def delivery_key(alert: dict[str, Any], channel: ChannelRule) -> str:
    return f"{alert['alert_id']}.{channel.id}.{alert['severity']}"


def handle_alert_event(event: CloudEventLike, deps: DispatchDeps) -> dict[str, Any]:
    decoded = decode_or_dead_letter(event, _decode, deps.publisher, deps.alerts_topic,
                                    "malformed_alert")
    if decoded is None:
        return {"status": "dead_lettered"}
    if isinstance(decoded, DigestRequest):
        return _digest(decoded, deps)
    if isinstance(decoded, SummaryRequest):
        return _weekly(decoded, deps)
    alert = decoded
    customer = alert["customer_id"]
    tenant = deps.tenants.get(customer)
    if tenant is None or tenant.get("status", "active") != "active":
        log.warning("alert for a tenant that is gone", extra={"customer_id": customer,
                                                               "alert_id": alert["alert_id"]})
        return {"status": "tenant_gone"}
    now = deps.clock()
    try:
        settings = NotificationSettings.model_validate(tenant.get("notifications") or {})
    except ValidationError as exc:
        deps.deliveries.finish(customer, f"{alert['alert_id']}.settings", "failed", now,
                               f"notification settings invalid: {exc.errors()[0]['msg']}")
        return {"status": "settings_invalid"}
    outcome: dict[str, str] = {}
    retry_later = []
    for planned in plan(alert["type"], alert["severity"], settings, now):
        channel = planned.channel
        key = delivery_key(alert, channel)
        meta = {"alert_id": alert["alert_id"], "channel": channel.id, "kind": channel.kind,
                "severity": alert["severity"], "type": alert["type"],
                "title": str(alert.get("title", ""))[:300], "payer": alert.get("payer")}
        if planned.when == "digest":
            deps.deliveries.queue(customer, key, {**meta, "reason": planned.reason}, now)
            outcome[channel.id] = "queued"
            continue
        state = deps.deliveries.begin(customer, key, meta, now, LEASE_SECONDS)
        if state != "deliver":
            outcome[channel.id] = state
            continue
        try:
            _send_with_retries(channel, alert, tenant, deps)
        except DeliveryFailed as exc:
            deps.deliveries.finish(customer, key, "failed", deps.clock(), exc.reason)
            outcome[channel.id] = f"failed: {exc.reason}"
            if exc.retryable:
                retry_later.append(channel.id)
            continue
        deps.deliveries.finish(customer, key, "delivered", deps.clock())
        outcome[channel.id] = "delivered"
    log.info("alert dispatched", extra={"customer_id": customer, "alert_id": alert["alert_id"],
                                        "channels": outcome})
    if retry_later:
        raise ChannelsFailed(f"will retry {retry_later}")
    return {"status": "dispatched", "channels": outcome}


def _send_with_retries(channel: ChannelRule, alert: dict[str, Any], tenant: dict[str, Any],
                       deps: DispatchDeps) -> None:
    for attempt in range(ATTEMPTS_IN_PLACE):
        try:
            _send(channel, alert, tenant, deps)
            return
        except DeliveryFailed as exc:
            if not exc.retryable or attempt == ATTEMPTS_IN_PLACE - 1:
                raise
            wait = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)]
            if exc.retry_after is not None:
                wait = min(exc.retry_after, RETRY_AFTER_CAP_SECONDS)
            deps.sleep(wait)


def _send(channel: ChannelRule, alert: dict[str, Any], tenant: dict[str, Any],
          deps: DispatchDeps) -> None:
    customer = alert["customer_id"]
    if channel.kind == "email":
        smtp = deps.smtp()
        if smtp is None:
            raise DeliveryFailed("no SMTP server configured", True)
        smtp.send(email_message(alert, smtp.sender, list(channel.recipients), deps.dashboard_url,
                                str(tenant.get("name") or customer), _chart(alert, deps)))
    elif channel.kind == "slack":
        deps.http.post_json(_slack_url(channel, customer, deps),
                            slack_message(alert, deps.dashboard_url))
    else:
        secret = deps.secrets.get(outbound_webhook_secret(customer))
        if not secret:
            raise DeliveryFailed("no outbound webhook secret", False)
        stamp = str(int(deps.clock().timestamp()))
        body, headers = webhook_request(alert, secret, stamp)
        deps.http.post(str(channel.url), body, headers)


def _digest(request: DigestRequest, deps: DispatchDeps) -> dict[str, Any]:
    now = deps.clock()
    day = (request.day or now.date()).isoformat()
    if request.customer == "*":
        ids = deps.tenant_ids.list_ids()
        for customer in ids:
            fan = DigestRequest(digest=request.digest, customer=customer,
                                day=date.fromisoformat(day))
            deps.publisher.publish(deps.alerts_topic, fan.model_dump_json().encode(),
                                   {"customer_id": customer, "type": "digest"})
        return {"status": "fanned_out", "tenants": len(ids)}
    customer = request.customer
    tenant = deps.tenants.get(customer)
    if tenant is None or tenant.get("status", "active") != "active":
        return {"status": "tenant_gone"}
    try:
        settings = NotificationSettings.model_validate(tenant.get("notifications") or {})
    except ValidationError:
        return {"status": "settings_invalid"}
    channels = {c.id: c for c in settings.channels}
    by_channel: dict[str, list[dict[str, Any]]] = {}
    for entry in deps.deliveries.queued(customer):
        by_channel.setdefault(str(entry.get("channel")), []).append(entry)
    outcome: dict[str, str] = {}
    retry_later = []
    for channel_id, entries in sorted(by_channel.items()):
        channel = channels.get(channel_id)
        if channel is None:
            for entry in entries:
                deps.deliveries.finish(customer, entry["key"], "dropped", now,
                                       "the channel is no longer configured")
            outcome[channel_id] = "dropped"
            continue
        key = f"digest.{day}.{channel_id}"
        state = deps.deliveries.begin(customer, key, {"channel": channel_id, "kind": channel.kind,
                                                      "digest": day}, now, LEASE_SECONDS)
        if state == "deliver":
            try:
                _send_digest(channel, entries, tenant, customer, day, deps)
            except DeliveryFailed as exc:
                deps.deliveries.finish(customer, key, "failed", deps.clock(), exc.reason)
                outcome[channel_id] = f"failed: {exc.reason}"
                if exc.retryable:
                    retry_later.append(channel_id)
                continue
            deps.deliveries.finish(customer, key, "delivered", deps.clock())
        elif state == "busy":
            outcome[channel_id] = "busy"
            continue
        for entry in entries:  # sent now, or by an earlier delivery that stopped before this
            deps.deliveries.finish(customer, entry["key"], "delivered", deps.clock())
        outcome[channel_id] = f"delivered {len(entries)}"
    log.info("digest dispatched", extra={"customer_id": customer, "channels": outcome})
    if retry_later:
        raise ChannelsFailed(f"will retry {retry_later}")
    return {"status": "digest", "channels": outcome}


def _send_digest(channel: ChannelRule, entries: list[dict[str, Any]], tenant: dict[str, Any],
                 customer: str, day: str, deps: DispatchDeps) -> None:
    entries = sorted(entries, key=lambda e: (-SEVERITY_RANK.get(str(e.get("severity")), 0),
                                             str(e.get("title"))))
    for attempt in range(ATTEMPTS_IN_PLACE):
        try:
            if channel.kind == "email":
                smtp = deps.smtp()
                if smtp is None:
                    raise DeliveryFailed("no SMTP server configured", True)
                smtp.send(digest_email(entries, smtp.sender, list(channel.recipients),
                                       deps.dashboard_url, str(tenant.get("name") or customer),
                                       day))
            elif channel.kind == "slack":
                deps.http.post_json(_slack_url(channel, customer, deps),
                                    digest_slack(entries, deps.dashboard_url, day))
            else:
                secret = deps.secrets.get(outbound_webhook_secret(customer))
                if not secret:
                    raise DeliveryFailed("no outbound webhook secret", False)
                payload = {"digest": day, "customer_id": customer, "alerts": [
                    {k: e.get(k) for k in ("alert_id", "type", "severity", "title", "payer")}
                    for e in entries]}
                body, headers = webhook_request(payload, secret, str(int(deps.clock().timestamp())))
                deps.http.post(str(channel.url), body, headers)
            return
        except DeliveryFailed as exc:
            if not exc.retryable or attempt == ATTEMPTS_IN_PLACE - 1:
                raise
            deps.sleep(min(exc.retry_after or BACKOFF_SECONDS[min(attempt, 1)],
                           RETRY_AFTER_CAP_SECONDS))


def _slack_url(channel: ChannelRule, customer: str, deps: DispatchDeps) -> str:
    raw = deps.secrets.get(slack_webhooks_secret(customer))
    try:
        url = json.loads(raw)[channel.id] if raw else None
    except (ValueError, KeyError, TypeError):
        url = None
    if not isinstance(url, str) or not url.startswith(SLACK_URL_PREFIXES):
        raise DeliveryFailed(f"no Slack webhook URL for channel {channel.id}", False)
    return url


def _weekly(request: SummaryRequest, deps: DispatchDeps) -> dict[str, Any]:
    week_end = request.week_end or deps.clock().date()
    if request.customer == "*":
        ids = deps.tenant_ids.list_ids()
        for customer in ids:
            fan = SummaryRequest(summary="weekly", customer=customer, week_end=week_end)
            deps.publisher.publish(deps.alerts_topic, fan.model_dump_json().encode(),
                                   {"customer_id": customer, "type": "weekly_summary"})
        return {"status": "fanned_out", "tenants": len(ids)}
    customer = request.customer
    tenant = deps.tenants.get(customer)
    if tenant is None or tenant.get("status", "active") != "active" or deps.weekly is None:
        return {"status": "tenant_gone" if deps.weekly else "no_sources"}
    try:
        settings = NotificationSettings.model_validate(tenant.get("notifications") or {})
    except ValidationError:
        return {"status": "settings_invalid"}
    channels = [c for c in settings.channels if c.kind == "email" and c.weekly_summary]
    if not channels:
        return {"status": "no_email_channel"}
    start = week_end - timedelta(days=7 * (1 + PRIOR_WEEKS))
    summary = summarize(deps.weekly.alerts_since(customer, start),
                        deps.weekly.cells(customer, start, week_end),
                        deps.weekly.authorizations(customer), week_end)
    outcome: dict[str, str] = {}
    retry_later = []
    now = deps.clock()
    for channel in channels:
        key = f"summary.{week_end.isoformat()}.{channel.id}"
        if deps.deliveries.begin(customer, key, {"channel": channel.id, "kind": "email",
                                                 "summary": week_end.isoformat()},
                                 now, LEASE_SECONDS) != "deliver":
            outcome[channel.id] = "already"
            continue
        smtp = deps.smtp()
        try:
            if smtp is None:
                raise DeliveryFailed("no SMTP server configured", True)
            smtp.send(weekly_email(summary, smtp.sender, list(channel.recipients),
                                   str(tenant.get("name") or customer), deps.dashboard_url))
        except DeliveryFailed as exc:
            deps.deliveries.finish(customer, key, "failed", deps.clock(), exc.reason)
            outcome[channel.id] = f"failed: {exc.reason}"
            if exc.retryable:
                retry_later.append(channel.id)
            continue
        deps.deliveries.finish(customer, key, "delivered", deps.clock())
        outcome[channel.id] = "delivered"
    if retry_later:
        raise ChannelsFailed(f"will retry {retry_later}")
    return {"status": "weekly_summary", "channels": outcome, "alerts": summary.raised}


def _chart(alert: dict[str, Any], deps: DispatchDeps) -> bytes | None:
    """The payer's weekly denial rate for denial alerts; no chart is better than no e-mail."""
    if alert.get("type") not in DENIAL_TYPES or not alert.get("payer") or deps.weekly is None:
        return None
    window = alert.get("window") if isinstance(alert.get("window"), dict) else {}
    try:
        end = date.fromisoformat(str((window or {}).get("current_end") or alert.get(
            "created_at"))[:10]) + timedelta(days=1)
        cells = deps.weekly.cells(alert["customer_id"], end - timedelta(days=7 * WEEKS), end)
        return render_png(weekly_points(cells, str(alert["payer"]), end))
    except (ValueError, TypeError, OSError, gexc.GoogleAPICallError) as exc:
        # a chart must never cost the alert its e-mail
        log.warning("trend chart skipped", extra={"alert_id": alert.get("alert_id"),
                                                  "error": type(exc).__name__})
        return None
