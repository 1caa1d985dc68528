""""Send a test" for one notification channel (the dashboard's settings page): the request
travels on the `alerts` topic like every other notice, so only the dispatcher holds the
channels' secrets (SMTP, Slack URLs, the outbound webhook key) and the test goes through
the very code and credentials a real alert would.

Each request has its own id: a redelivery of the same request sends nothing twice (the
delivery ledger's `test.<id>.<channel>` key); a second click is a second test. The outcome is
recorded like any delivery, so a failed test appears on the dashboard with its reason.
"""

from __future__ import annotations

import json
from email.message import EmailMessage
from functools import partial
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from upstream.adapters.channels import DeliveryFailed
from upstream.domain.notify.render import webhook_request
from upstream.domain.notify.routing import ChannelRule
from upstream.logs import get_logger
from upstream.services.delivery import (
    LEASE_SECONDS,
    DispatchDeps,
    Outcomes,
    active_settings,
    deliver,
    require_smtp,
    slack_url,
)
from upstream.services.tenants import CUSTOMER_ID, outbound_webhook_secret

log = get_logger(__name__)


class ChannelTest(BaseModel):
    """`{"test": "channel", "customer", "channel", "test_id", "by"}`."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    test: Literal["channel"]
    customer: str = Field(pattern=f"^{CUSTOMER_ID}$")
    channel: str = Field(min_length=1, max_length=64)
    test_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    by: str = Field(max_length=300)


def request_body(customer: str, channel: str, test_id: str, by: str) -> bytes:
    return json.dumps({"test": "channel", "customer": customer, "channel": channel,
                       "test_id": test_id, "by": by}).encode()


def _text(practice: str, channel: ChannelRule, request: ChannelTest) -> str:
    return (f"This is a test from Upstream for {practice}, asked for by {request.by}.\n\n"
            f"Channel {channel.id} works: alerts of {channel.min_severity} and above "
            f"({channel.mode}) will arrive here.\n")


def _send(channel: ChannelRule, tenant: dict[str, Any], request: ChannelTest,
          deps: DispatchDeps) -> None:
    practice = str(tenant.get("name") or request.customer)
    if channel.kind == "email":
        smtp = require_smtp(deps)
        message = EmailMessage()
        message["From"], message["To"] = smtp.sender, ", ".join(channel.recipients)
        message["Subject"] = f"Upstream test: channel {channel.id} works"
        message.set_content(_text(practice, channel, request))
        smtp.send(message)
    elif channel.kind == "slack":
        deps.http.post_json(slack_url(channel, request.customer, deps),
                            {"text": _text(practice, channel, request)})
    else:
        secret = deps.secrets.get(outbound_webhook_secret(request.customer))
        if not secret:
            raise DeliveryFailed("no outbound webhook secret", False)
        body, headers = webhook_request(
            {"test": True, "alert_id": f"test-{request.test_id}",
             "customer_id": request.customer, "channel": channel.id},
            secret, str(int(deps.clock().timestamp())))
        deps.http.post(str(channel.url), body, headers)


def send_channel_test(request: ChannelTest, deps: DispatchDeps) -> dict[str, Any]:
    tenant, settings = active_settings(deps, request.customer)
    if tenant is None:
        return {"status": "tenant_gone"}
    now = deps.clock()
    key = f"test.{request.test_id}.{request.channel}"
    channel = next((c for c in settings.channels if c.id == request.channel), None) \
        if settings else None
    meta = {"alert_id": f"test-{request.test_id}", "channel": request.channel,
            "kind": channel.kind if channel else None, "type": "channel_test",
            "severity": "LOW", "title": f"Test of channel {request.channel}"}
    if channel is None:
        deps.deliveries.begin(request.customer, key, meta, now, LEASE_SECONDS)
        deps.deliveries.finish(request.customer, key, "failed", now,
                               "no such channel in the saved settings")
        return {"status": "no_such_channel"}
    if deps.deliveries.begin(request.customer, key, meta, now, LEASE_SECONDS) != "deliver":
        return {"status": "already_done"}
    outcomes = Outcomes()
    deliver(deps, request.customer, key, channel.id,
            partial(_send, channel, tenant, request, deps), outcomes)
    log.info("channel test", extra={"customer_id": request.customer,
                                    "channels": outcomes.channels})
    outcomes.raise_if_retrying()
    return {"status": "tested", "channels": outcomes.channels}
