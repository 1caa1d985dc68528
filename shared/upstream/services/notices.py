"""Scheduled notices on the `alerts` topic: the daily digest (what digest channels and quiet
hours held) and the Monday weekly summary e-mail. Cloud Scheduler publishes them with
`customer: "*"`; they are fanned out one message per tenant, so one tenant's failure is
retried alone. Each goes to each channel once (`digest.<day>.<channel>`,
`summary.<week end>.<channel>` in the delivery log).
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import partial
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from upstream.adapters.channels import DeliveryFailed
from upstream.domain.notify.render import digest_email, digest_slack, webhook_request
from upstream.domain.notify.routing import (
    SEVERITY_ORDER,
    ChannelRule,
    NotificationSettings,
    first_run_to_digest,
    plan,
)
from upstream.domain.notify.weekly import PRIOR_WEEKS, summarize, weekly_email
from upstream.logs import get_logger
from upstream.services.delivery import (
    LEASE_SECONDS,
    ChannelsFailed,
    DispatchDeps,
    Outcomes,
    active_settings,
    deliver,
    require_smtp,
    slack_url,
)
from upstream.services.tenants import outbound_webhook_secret

log = get_logger(__name__)
_CUSTOMER = r"^(\*|[A-Za-z0-9][A-Za-z0-9_-]{0,62})$"


class DigestRequest(BaseModel):
    """`{"digest": "daily", "customer": "*"|id, "day"?}`, or the summary of a practice's first
    run: `{"digest": "first_run", "customer": id, "alerts": [[alert id, type, severity], …]}`,
    sent once (`first-run.<channel>`) when every one of those alerts is held for it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    digest: Literal["daily", "first_run"]
    customer: str = Field(pattern=_CUSTOMER)
    day: date | None = None
    alerts: list[tuple[str, str, str]] = Field(default_factory=list, max_length=5000)


class SummaryNotReady(ChannelsFailed):
    """The first-run summary arrived before some of its alerts were held: Pub/Sub delivers
    messages in any order, so it is retried until they are (nothing is sent half)."""


class SummaryRequest(BaseModel):
    """`{"summary": "weekly", "customer": "*"|id, "week_end"?}`: the week before `week_end`."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    summary: Literal["weekly"]
    customer: str = Field(pattern=_CUSTOMER)
    week_end: date | None = None


def _fan_out(deps: DispatchDeps, request: DigestRequest | SummaryRequest,
             kind: str) -> dict[str, Any]:
    ids = deps.tenant_ids.list_ids()
    for customer in ids:
        one = request.model_copy(update={"customer": customer})
        deps.publisher.publish(deps.alerts_topic, one.model_dump_json().encode(),
                               {"customer_id": customer, "type": kind})
    return {"status": "fanned_out", "tenants": len(ids)}


def send_digest(request: DigestRequest, deps: DispatchDeps) -> dict[str, Any]:
    day = (request.day or deps.clock().date()).isoformat()
    if request.customer == "*":
        return _fan_out(deps, request.model_copy(update={"day": date.fromisoformat(day)}),
                        "digest")
    customer = request.customer
    tenant, settings = active_settings(deps, customer)
    if tenant is None or settings is None:
        return {"status": "tenant_gone" if tenant is None else "settings_invalid"}
    if request.digest == "first_run":
        _first_run_ready(request, settings, deps)
    channels = {c.id: c for c in settings.channels}
    held: dict[str, list[dict[str, Any]]] = {}
    for entry in deps.deliveries.queued(customer):
        held.setdefault(str(entry.get("channel")), []).append(entry)
    now = deps.clock()
    outcomes = Outcomes()
    for channel_id, entries in sorted(held.items()):
        channel = channels.get(channel_id)
        if channel is None:
            for entry in entries:
                deps.deliveries.finish(customer, entry["key"], "dropped", now,
                                       "the channel is no longer configured")
            outcomes.channels[channel_id] = "dropped"
            continue
        key = (f"first-run.{channel_id}" if request.digest == "first_run"
               else f"digest.{day}.{channel_id}")
        state = deps.deliveries.begin(customer, key, {"channel": channel_id, "digest": day,
                                                      "kind": channel.kind}, now, LEASE_SECONDS)
        if state == "busy" or (state == "deliver" and not deliver(
                deps, customer, key, channel_id,
                partial(_send_digest, channel, entries, tenant, customer, day, deps,
                        request.digest == "first_run"),
                outcomes)):
            outcomes.channels.setdefault(channel_id, state)
            continue
        for entry in entries:  # sent now, or by an earlier delivery that stopped before this
            deps.deliveries.finish(customer, entry["key"], "delivered", deps.clock())
        outcomes.channels[channel_id] = f"delivered {len(entries)}"
    log.info("digest dispatched", extra={"customer_id": customer, "channels": outcomes.channels})
    outcomes.raise_if_retrying()
    return {"status": "digest", "channels": outcomes.channels}


def _first_run_ready(request: DigestRequest, settings: NotificationSettings,
                     deps: DispatchDeps) -> None:
    """Raises `SummaryNotReady` while an alert of the first run is not yet held (or sent)."""
    now = deps.clock()
    missing = 0
    for alert_id, kind, severity in request.alerts:
        alert = {"alert_id": alert_id, "first_run": True}
        for planned in first_run_to_digest(plan(kind, severity, settings, now), alert):
            key = f"{alert_id}.{planned.channel.id}.{severity}"
            if deps.deliveries.get(request.customer, key) is None:
                missing += 1
    if missing:
        raise SummaryNotReady(f"first-run summary waits for {missing} deliveries")


def _send_digest(channel: ChannelRule, entries: list[dict[str, Any]], tenant: dict[str, Any],
                 customer: str, day: str, deps: DispatchDeps, first_run: bool = False) -> None:
    entries = sorted(entries, key=lambda e: (-SEVERITY_ORDER.get(str(e.get("severity")), 0),
                                             str(e.get("title"))))
    if channel.kind == "email":
        smtp = require_smtp(deps)
        smtp.send(digest_email(entries, smtp.sender, list(channel.recipients),
                               deps.dashboard_url, str(tenant.get("name") or customer), day,
                               first_run))
    elif channel.kind == "slack":
        deps.http.post_json(slack_url(channel, customer, deps),
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


def send_weekly_summary(request: SummaryRequest, deps: DispatchDeps) -> dict[str, Any]:
    week_end = request.week_end or deps.clock().date()
    if request.customer == "*":
        return _fan_out(deps, request.model_copy(update={"week_end": week_end}),
                        "weekly_summary")
    customer = request.customer
    tenant, settings = active_settings(deps, customer)
    if tenant is None or settings is None or deps.weekly is None:
        return {"status": "tenant_gone" if tenant is None else "settings_invalid"
                if settings is None else "no_sources"}
    channels = [c for c in settings.channels if c.kind == "email" and c.weekly_summary]
    if not channels:
        return {"status": "no_email_channel"}
    start = week_end - timedelta(days=7 * (1 + PRIOR_WEEKS))
    summary = summarize(deps.weekly.alerts_since(customer, start),
                        deps.weekly.cells(customer, start, week_end),
                        deps.weekly.authorizations(customer), week_end)
    outcomes = Outcomes()
    for channel in channels:
        key = f"summary.{week_end.isoformat()}.{channel.id}"
        if deps.deliveries.begin(customer, key, {"channel": channel.id, "kind": "email",
                                                 "summary": week_end.isoformat()},
                                 deps.clock(), LEASE_SECONDS) != "deliver":
            outcomes.channels[channel.id] = "already"
            continue

        def send(c: ChannelRule = channel) -> None:
            smtp = require_smtp(deps)
            smtp.send(weekly_email(summary, smtp.sender, list(c.recipients),
                                   str(tenant.get("name") or customer), deps.dashboard_url))

        deliver(deps, customer, key, channel.id, send, outcomes)
    outcomes.raise_if_retrying()
    return {"status": "weekly_summary", "channels": outcomes.channels, "alerts": summary.raised}
