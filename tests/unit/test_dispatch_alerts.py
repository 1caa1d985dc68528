"""The alert_dispatcher use-case with fakes for storage and channels (the channels are proven
against real servers in test_channels, the delivery log on the emulators)."""

from __future__ import annotations

import json
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import pytest

from tests.fakes import FakePublisher, FakeSecrets, FakeTenants
from tests.unit.test_detector_runs import Event
from tests.unit.test_notify import NOON, alert
from upstream.adapters.channels import DeliveryFailed
from upstream.services.dispatch_alerts import ChannelsFailed, DispatchDeps, handle_alert_event
from upstream.services.tenants import outbound_webhook_secret, slack_webhooks_secret

CHANNELS: dict[str, Any] = {"timezone": "UTC", "channels": [
    {"id": "mail", "kind": "email", "recipients": ["rcm@example.com"]},
    {"id": "team", "kind": "slack"},
    {"id": "erp", "kind": "webhook", "url": "https://erp.example.com/hooks/upstream"},
    {"id": "weekly", "kind": "email", "recipients": ["cfo@example.com"], "mode": "digest"},
]}


class Log:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    def begin(self, customer_id: str, key: str, meta: dict[str, Any], now: datetime,
              lease_seconds: int) -> str:
        doc = self.docs.get(key, {})
        if doc.get("status") == "delivered":
            return "delivered"
        self.docs[key] = {**doc, **meta, "status": "sending",
                          "attempts": doc.get("attempts", [])}
        return "deliver"

    def finish(self, customer_id: str, key: str, status: str, now: datetime,
               error: str | None = None) -> None:
        doc = self.docs.setdefault(key, {"attempts": []})
        doc["status"] = status
        doc.setdefault("attempts", []).append((status, error))

    def queue(self, customer_id: str, key: str, meta: dict[str, Any], now: datetime) -> None:
        self.docs.setdefault(key, {**meta, "status": "queued", "attempts": []})

    def queued(self, customer_id: str) -> list[dict[str, Any]]:
        return [{**doc, "key": key} for key, doc in self.docs.items()
                if doc.get("status") == "queued"]

    def get(self, customer_id: str, key: str) -> dict[str, Any] | None:
        return self.docs.get(key)

    def alerts_sent_since(self, customer_id: str, since: datetime) -> int:
        return len({doc.get("alert_id") for doc in self.docs.values()
                    if doc.get("status") == "delivered" and doc.get("alert_id")
                    and not doc.get("reason")})


class Smtp:
    sender = "alerts@upstream.test"

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.failures: list[DeliveryFailed] = []

    def send(self, message: EmailMessage) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message)


class Http:
    def __init__(self) -> None:
        self.posts: list[tuple[str, bytes, dict[str, str]]] = []
        self.failures: list[DeliveryFailed] = []

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.posts.append((url, body, headers))

    def post_json(self, url: str, payload: dict[str, Any]) -> None:
        self.post(url, json.dumps(payload).encode(), {})


class Ids:
    def __init__(self, ids: list[str]) -> None:
        self.ids = ids

    def list_ids(self) -> list[str]:
        return self.ids


def deps(tenant: dict[str, Any] | None = None) -> tuple[DispatchDeps, Log, Smtp, Http,
                                                          FakePublisher, list[float]]:
    log, smtp, http, publisher = Log(), Smtp(), Http(), FakePublisher()
    slept: list[float] = []
    tenants = {"acme": tenant if tenant is not None else {"status": "active", "name": "Acme",
                                                          "notifications": CHANNELS}}
    secrets = FakeSecrets({slack_webhooks_secret("acme"): json.dumps(
        {"team": "https://hooks.slack.com/services/T/B/X"}).encode(),
        outbound_webhook_secret("acme"): b"o" * 32})
    d = DispatchDeps(tenants=FakeTenants(tenants), tenant_ids=Ids(list(tenants)),
                     secrets=secrets, deliveries=log,
                     publisher=publisher, smtp=lambda: smtp,  # type: ignore[arg-type,return-value]
                     http=http,  # type: ignore[arg-type]
                     alerts_topic="alerts", dashboard_url="https://u.test",
                     clock=lambda: NOON, sleep=slept.append)
    return d, log, smtp, http, publisher, slept


def event(a: dict[str, Any] | None = None) -> Event:
    return Event(json.dumps(a or alert()).encode())


def test_each_channel_gets_the_alert_once_even_when_the_message_comes_again() -> None:
    d, _log, smtp, http, _, _ = deps()
    first = handle_alert_event(event(), d)
    assert first["channels"] == {"mail": "delivered", "team": "delivered", "erp": "delivered",
                                 "weekly": "queued"}
    again = handle_alert_event(event(), d)
    assert again["channels"] == {"mail": "delivered", "team": "delivered", "erp": "delivered",
                                 "weekly": "queued"}
    assert len(smtp.sent) == 1 and len(http.posts) == 2
    escalated = handle_alert_event(event(alert(severity="CRITICAL")), d)  # news: sent again
    assert escalated["channels"]["mail"] == "delivered" and len(smtp.sent) == 2
    url, _, headers = http.posts[1]
    assert url.startswith("https://erp.example.com") and headers["X-Signature"].startswith(
        "sha256=")


def test_a_failing_channel_is_retried_alone_on_the_next_delivery() -> None:
    d, log, smtp, http, _, slept = deps()
    smtp.failures = [DeliveryFailed("SMTP unreachable", True)] * 3
    with pytest.raises(ChannelsFailed):
        handle_alert_event(event(), d)
    assert slept == [1.0, 3.0] and len(http.posts) == 2
    assert log.docs["a1b2.mail.HIGH"]["status"] == "failed"
    result = handle_alert_event(event(), d)  # Pub/Sub redelivers
    assert result["channels"]["mail"] == "delivered" and len(http.posts) == 2
    assert [a[0] for a in log.docs["a1b2.mail.HIGH"]["attempts"]] == ["failed", "delivered"]


def test_slack_429_waits_its_retry_after_and_a_400_is_not_retried() -> None:
    d, log, _, http, _, slept = deps()
    http.failures = [DeliveryFailed("HTTP 429", True, 60.0), DeliveryFailed("HTTP 400", False)]
    result = handle_alert_event(event(), d)  # no raise: nothing a retry can fix
    assert slept == [10.0]  # capped
    assert result["channels"]["team"] == "failed: HTTP 400"
    assert log.docs["a1b2.team.HIGH"]["attempts"][-1] == ("failed", "HTTP 400")


def test_missing_secrets_fail_the_channel_with_a_reason() -> None:
    d, _log, _, _, _, _ = deps()
    d.secrets.values.clear()  # type: ignore[attr-defined]
    result = handle_alert_event(event(), d)
    assert result["channels"]["team"].startswith("failed: no Slack webhook URL")
    assert result["channels"]["erp"] == "failed: no outbound webhook secret"


@pytest.mark.parametrize("tenants", [{}, {"acme": {"status": "disabled",
                                                   "notifications": CHANNELS}}])
def test_an_alert_for_a_tenant_that_is_gone_is_acknowledged(
        tenants: dict[str, dict[str, Any]]) -> None:
    d, log, smtp, _, _, _ = deps()
    d.tenants.tenants.clear()  # type: ignore[attr-defined]
    d.tenants.tenants.update(tenants)  # type: ignore[attr-defined]
    assert handle_alert_event(event(), d)["status"] == "tenant_gone"
    assert smtp.sent == [] and log.docs == {}


def test_invalid_settings_are_recorded_and_garbage_is_dead_lettered() -> None:
    d, log, _, _, publisher, _ = deps({"status": "active", "notifications": {
        "channels": [{"id": "x", "kind": "email", "recipients": ["nope"]}]}})
    assert handle_alert_event(event(), d)["status"] == "settings_invalid"
    assert log.docs["a1b2.settings"]["status"] == "failed"
    assert handle_alert_event(Event(b'{"alert_id": 3}'), d)["status"] == "dead_lettered"
    assert publisher.messages[0][0] == "alerts-dlq"


def test_quiet_hours_hold_all_but_critical_for_the_digest() -> None:
    quiet = {**CHANNELS, "channels": [{**CHANNELS["channels"][0],
                                       "quiet_hours": {"start": "17:00", "end": "19:00"}}]}
    d, _log, smtp, _, _, _ = deps({"status": "active", "notifications": quiet})
    assert handle_alert_event(event(), d)["channels"] == {"mail": "queued"}
    assert handle_alert_event(event(alert(severity="CRITICAL")), d)["channels"] == {
        "mail": "delivered"}
    assert len(smtp.sent) == 1


def test_the_daily_digest_sends_what_was_held_once_per_channel() -> None:
    d, log, smtp, _, publisher, _ = deps()
    handle_alert_event(event(), d)  # `weekly` (a digest channel) holds it
    handle_alert_event(event(alert(alert_id="z9", severity="MEDIUM", title="Aetna <lag>")), d)
    fan = handle_alert_event(Event(b'{"digest": "daily", "customer": "*"}'), d)
    assert fan == {"status": "fanned_out", "tenants": 1}
    (_, data, _) = publisher.messages[-1]
    sent_before = len(smtp.sent)
    result = handle_alert_event(Event(data), d)
    assert result["channels"] == {"weekly": "delivered 2"}
    digest = smtp.sent[sent_before]
    assert "2 alerts" in digest["Subject"] and digest["To"] == "cfo@example.com"
    html = digest.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Aetna &lt;lag&gt;" in html and "<lag>" not in html
    held = [doc for doc in log.docs.values() if doc.get("channel") == "weekly"
            and "alert_id" in doc]
    assert len(held) == 2 and all(doc["status"] == "delivered" for doc in held)
    assert handle_alert_event(Event(data), d)["channels"] == {}  # nothing held any more
    assert len(smtp.sent) == sent_before + 1


@pytest.mark.parametrize("body", [b'{"digest": "weekly", "customer": "*"}',
                                  b'{"digest": "daily", "customer": "../x"}'])
def test_a_malformed_digest_request_is_dead_lettered(body: bytes) -> None:
    d, _, _, _, publisher, _ = deps()
    assert handle_alert_event(Event(body), d)["status"] == "dead_lettered"
    assert publisher.messages[-1][0] == "alerts-dlq"


def test_an_automation_escalation_also_reaches_the_escalation_contacts_once() -> None:
    d, _log, smtp, _, _, _ = deps({"status": "active", "name": "Acme",
                                   "notifications": {"channels": []}})
    escalation = alert(type="automation_escalation", severity="HIGH", evidence={
        "escalate_to": ["owner@practice.example", "bad address\r\nBcc: x@y.z"]})
    first = handle_alert_event(event(escalation), d)
    assert first["channels"] == {"escalation": "delivered"}
    assert handle_alert_event(event(escalation), d)["channels"] == {"escalation": "delivered"}
    [message] = smtp.sent
    assert message["To"] == "owner@practice.example"
    assert handle_alert_event(event(alert()), d)["channels"] == {}  # others: rules only


def test_beyond_the_weekly_budget_lower_severities_wait_for_the_digest() -> None:
    tenant = {"status": "active", "name": "Acme",
              "notifications": {**CHANNELS, "weekly_alert_budget": 3}}
    d, _log, smtp, _http, _, _ = deps(tenant)
    answers = [handle_alert_event(event(alert(alert_id=f"a{i}", severity="HIGH")), d)
               for i in range(5)]
    assert [a["channels"]["mail"] for a in answers] == [
        "delivered", "delivered", "delivered", "queued", "queued"]
    assert len(smtp.sent) == 3
    critical = handle_alert_event(event(alert(alert_id="a9", severity="CRITICAL")), d)
    assert critical["channels"]["mail"] == "delivered"  # CRITICAL never waits
    held = [doc for doc in _log.docs.values() if doc.get("status") == "queued"
            and doc.get("channel") == "mail"]
    assert {doc["reason"] for doc in held} == {"weekly alert budget (3) reached"}


def test_a_first_run_over_the_history_is_one_digest_not_an_email_per_finding() -> None:
    """The summary may arrive before its alerts (Pub/Sub keeps no order): it waits, retried,
    until every one is held, then goes once; the daily digest of that day is not spent."""
    from upstream.services.notices import SummaryNotReady

    d, log, smtp, _http, _, _ = deps()
    raised = [alert(alert_id=f"f{i}", severity="CRITICAL", first_run=True) for i in range(4)]
    summary = Event(json.dumps({"digest": "first_run", "customer": "acme", "alerts": [
        [a["alert_id"], a["type"], a["severity"]] for a in raised]}).encode())
    for a in raised[:3]:
        assert handle_alert_event(event(a), d)["channels"]["mail"] == "queued"
    with pytest.raises(SummaryNotReady):
        handle_alert_event(summary, d)
    assert smtp.sent == []
    handle_alert_event(event(raised[3]), d)
    done = handle_alert_event(summary, d)
    assert done["channels"]["mail"] == "delivered 4" and len(smtp.sent) == 2  # mail, weekly
    assert "First look at your history: 4 things to act on" in smtp.sent[0]["Subject"]
    assert handle_alert_event(summary, d)["channels"] == {}  # nothing left, nothing resent
    assert len(smtp.sent) == 2
    # digests do not spend the weekly budget
    assert log.alerts_sent_since("acme", NOON) == 0
