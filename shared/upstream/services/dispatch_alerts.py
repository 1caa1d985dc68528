"""The `alert_dispatcher` use-case: an alert on the `alerts` topic → the tenant's channels.

Per channel the tenant's rules decide now, the next digest, or not at all
(`domain/notify/routing.py`); sending and recording is `services/delivery.py`. Each alert
reaches each channel once per severity (an escalation is news). An alert for a tenant that
no longer exists is acknowledged and logged. The same topic carries the scheduled notices
(daily digest, weekly summary: `services/notices.py`; the monthly report:
`services/monthly_notice.py`) and channel tests (`services/channel_test.py`); anything else
is dead-lettered with its reason.
"""

from __future__ import annotations

import base64
import json
from datetime import date, timedelta
from functools import partial
from typing import Any

from google.api_core import exceptions as gexc

from upstream.adapters.channels import DeliveryFailed
from upstream.domain.detect.findings import DENIAL_TYPES
from upstream.domain.notify.chart import WEEKS, render_png, weekly_points
from upstream.domain.notify.render import email_message, slack_message, webhook_request
from upstream.domain.notify.routing import (
    ChannelRule,
    escalation_plan,
    first_run_to_digest,
    plan,
    week_start,
    within_budget,
)
from upstream.events import CloudEventLike
from upstream.logs import get_logger
from upstream.services.channel_test import ChannelTest, send_channel_test
from upstream.services.dead_letters import decode_or_dead_letter
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
from upstream.services.monthly_notice import MonthlyRequest, send_monthly_report
from upstream.services.notices import (
    DigestRequest,
    SummaryRequest,
    send_digest,
    send_weekly_summary,
)
from upstream.services.tenants import outbound_webhook_secret

__all__ = ["ChannelsFailed", "DigestRequest", "DispatchDeps", "SummaryRequest",
           "handle_alert_event"]

log = get_logger(__name__)


def _decode(event: Any) -> (dict[str, Any] | DigestRequest | SummaryRequest | ChannelTest
                            | MonthlyRequest):
    alert = json.loads(base64.b64decode(event.data["message"]["data"]))
    if isinstance(alert, dict) and "test" in alert:
        return ChannelTest.model_validate(alert)
    if isinstance(alert, dict) and "report" in alert:
        return MonthlyRequest.model_validate(alert)
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
        return send_digest(decoded, deps)
    if isinstance(decoded, SummaryRequest):
        return send_weekly_summary(decoded, deps)
    if isinstance(decoded, ChannelTest):
        return send_channel_test(decoded, deps)
    if isinstance(decoded, MonthlyRequest):
        return send_monthly_report(decoded, deps)
    return _dispatch(decoded, deps)


def _dispatch(alert: dict[str, Any], deps: DispatchDeps) -> dict[str, Any]:
    customer = alert["customer_id"]
    tenant, settings = active_settings(deps, customer)
    if tenant is None:
        log.warning("alert for a tenant that is gone", extra={"customer_id": customer,
                                                               "alert_id": alert["alert_id"]})
        return {"status": "tenant_gone"}
    now = deps.clock()
    if settings is None:
        deps.deliveries.finish(customer, f"{alert['alert_id']}.settings", "failed", now,
                               "notification settings invalid")
        return {"status": "settings_invalid"}
    outcomes = Outcomes()
    planned_all = first_run_to_digest(plan(alert["type"], alert["severity"], settings, now),
                                      alert)
    if any(p.when == "now" for p in planned_all) and alert["severity"] != "CRITICAL":
        sent = deps.deliveries.alerts_sent_since(customer, week_start(now, settings))
        planned_all = within_budget(planned_all, alert["severity"], sent, settings)
    for planned in [*planned_all, *escalation_plan(alert)]:
        channel = planned.channel
        key = delivery_key(alert, channel)
        meta = {"alert_id": alert["alert_id"], "channel": channel.id, "kind": channel.kind,
                "severity": alert["severity"], "type": alert["type"],
                "title": str(alert.get("title", ""))[:300], "payer": alert.get("payer")}
        if planned.when == "digest":
            deps.deliveries.queue(customer, key, {**meta, "reason": planned.reason}, now)
            outcomes.channels[channel.id] = "queued"
            continue
        state = deps.deliveries.begin(customer, key, meta, now, LEASE_SECONDS)
        if state != "deliver":
            outcomes.channels[channel.id] = state
            continue
        deliver(deps, customer, key, channel.id,
                partial(_send, channel, alert, tenant, deps), outcomes)
    log.info("alert dispatched", extra={"customer_id": customer, "alert_id": alert["alert_id"],
                                        "channels": outcomes.channels})
    outcomes.raise_if_retrying()
    return {"status": "dispatched", "channels": outcomes.channels}


def _send(channel: ChannelRule, alert: dict[str, Any], tenant: dict[str, Any],
          deps: DispatchDeps) -> None:
    customer = alert["customer_id"]
    if channel.kind == "email":
        smtp = require_smtp(deps)
        smtp.send(email_message(alert, smtp.sender, list(channel.recipients), deps.dashboard_url,
                                str(tenant.get("name") or customer), _chart(alert, deps)))
    elif channel.kind == "slack":
        deps.http.post_json(slack_url(channel, customer, deps),
                            slack_message(alert, deps.dashboard_url))
    else:
        secret = deps.secrets.get(outbound_webhook_secret(customer))
        if not secret:
            raise DeliveryFailed("no outbound webhook secret", False)
        body, headers = webhook_request(alert, secret, str(int(deps.clock().timestamp())))
        deps.http.post(str(channel.url), body, headers)


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
