"""Routing and rendering of alerts (pure)."""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime
from email.message import Message
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from upstream.domain.notify.render import email_message, slack_message, subject, webhook_request
from upstream.domain.notify.routing import NotificationSettings, plan
from upstream.domain.webhooks import verify_ehr_signature

EVIL = "<script>alert('x')</script> & <b>Aetna</b>"


def alert(**changes: Any) -> dict[str, Any]:
    base = {
        "alert_id": "a1b2", "customer_id": "acme", "type": "denial_rate_drift",
        "severity": "HIGH", "payer": "UnitedHealthcare", "scope": "payer",
        "title": "UnitedHealthcare: denial rate 22% vs 8% baseline",
        "summary": "Denials rose in the last 7 days.",
        "metrics": {"current_rate": 0.22, "baseline_rate": 0.08, "ratio": 2.75,
                    "p_value": 0.0003, "current_denied": 22, "current_decided": 100},
        "evidence": {
            "top_cpt": [{"cpt": "97153", "denied": 15, "decided": 60, "rate": 0.25,
                         "baseline_rate": 0.09}],
            "top_carc": [{"code": "CO-197", "meaning": "Precertification absent",
                          "denied": 12, "denied_dollars": 1800.0}],
            "affected_lines": [{"claim_id": "C1", "line": 1, "patient_key": "pk_9f8e",
                                "cpt": "97153", "carc_codes": ["CO-197"],
                                "billed_cents": 15000, "service_date": "2025-12-01",
                                "outcome": "DENIED"}],
            "affected_lines_total": 22},
        "recommended_actions": ["Check the authorization on file."],
        "window": {}, "created_at": "2026-01-01", "status": "open"}
    return {**base, **changes}


def settings(**channel: Any) -> NotificationSettings:
    return NotificationSettings.model_validate({"timezone": "America/Chicago", "channels": [
        {"id": "billing", "kind": "email", "recipients": ["rcm@example.com"], **channel}]})


NOON = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)  # 12:00 in Chicago
NIGHT = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # 02:00 in Chicago


@pytest.mark.parametrize("channel, severity, when, expected", [
    ({}, "HIGH", NOON, "now"),
    ({}, "LOW", NOON, None),  # below the default MEDIUM
    ({"min_severity": "CRITICAL"}, "HIGH", NOON, None),
    ({"types": ["auth_expiring"]}, "HIGH", NOON, None),
    ({"types": ["denial_rate_drift"]}, "HIGH", NOON, "now"),
    ({"mode": "digest"}, "CRITICAL", NOON, "digest"),
    ({"quiet_hours": {"start": "22:00", "end": "07:00"}}, "HIGH", NIGHT, "digest"),
    ({"quiet_hours": {"start": "22:00", "end": "07:00"}}, "CRITICAL", NIGHT, "now"),
    ({"quiet_hours": {"start": "22:00", "end": "07:00"}}, "HIGH", NOON, "now"),
    ({"quiet_hours": {"start": "01:00", "end": "05:00"}}, "MEDIUM", NIGHT, "digest"),
])
def test_routing(channel: dict[str, Any], severity: str, when: datetime,
                 expected: str | None) -> None:
    planned = plan("denial_rate_drift", severity, settings(**channel), when)
    assert [p.when for p in planned] == ([expected] if expected else [])


@pytest.mark.parametrize("bad", [
    {"timezone": "Mars/Olympus"},
    {"channels": [{"id": "x", "kind": "email", "recipients": ["not an address"]}]},
    {"channels": [{"id": "x", "kind": "email", "recipients": []}]},
    {"channels": [{"id": "x", "kind": "webhook"}]},
    {"channels": [{"id": "x", "kind": "webhook", "url": "ftp://x"}]},
    {"channels": [{"id": "x", "kind": "slack"}, {"id": "x", "kind": "slack"}]},
    {"channels": [{"id": "x", "kind": "pager"}]},
    {"channels": [{"id": "x", "kind": "slack", "min_severity": "URGENT"}]},
    {"channels": [{"id": "x", "kind": "slack", "surprise": 1}]},
])
def test_bad_settings_are_refused_with_a_reason(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        NotificationSettings.model_validate(bad)


def _parts(message: Message) -> tuple[str, str]:
    parsed = email.message_from_bytes(message.as_bytes())
    text = html = ""
    for part in parsed.walk():
        payload = part.get_payload(decode=True)
        if part.get_content_type() == "text/plain" and isinstance(payload, bytes):
            text = payload.decode()
        elif part.get_content_type() == "text/html" and isinstance(payload, bytes):
            html = payload.decode()
    return text, html


def test_the_email_carries_the_evidence_in_text_and_html_with_patient_keys_only() -> None:
    message = email_message(alert(), "alerts@upstream.test", ["rcm@example.com"],
                            "https://upstream.test", "Acme ABA")
    text, html = _parts(message)
    for body in (text, html):
        assert "97153" in body and "CO-197" in body and "Precertification absent" in body
        assert "pk_9f8e" in body and "1 of 22" in body
        assert "https://upstream.test/alerts/a1b2" in body
    assert "Denial rate now" in text and "<table" in html
    assert message["Subject"].startswith("[Upstream] HIGH")


def test_the_email_leads_with_what_happened_the_stake_and_what_to_do_in_plain_words() -> None:
    """No internal names (`cusum | 32.65`, `billed_cents`), a p-value in odds, dollars as
    dollars, a patient key shortened, and what to do before the evidence."""
    loud = alert(metrics={**alert()["metrics"], "cusum": 32.65, "threshold": 8.52,
                          "design_effect": 1.2, "revenue_at_risk_dollars": 4200.0},
                 summary="22 of 100 lines denied this week. Against 8% before.")
    loud["evidence"]["affected_lines"][0]["patient_key"] = "f" * 64
    text, html = _parts(email_message(loud, "a@upstream.test", ["b@example.com"],
                                      "https://u.test", "Acme ABA"))
    for body in (text, html):
        for internal in ("cusum", "threshold", "design effect", "billed_cents", "p value",
                         "denial_rate_drift", "f" * 64):
            assert internal not in body, internal
        assert "At stake: about $4,200." in body and "about 1 in 3,000 chance this is noise" \
            in body and "$150.00" in body and "ffffffff…" in body
    assert text.index("22 of 100 lines denied this week.") < text.index("What to do") \
        < text.index("EVIDENCE") < text.index("Key figures")


@pytest.mark.parametrize(("p_value", "words"), [
    (0.0003, "about 1 in 3,000 chance"), (0.0001, "about 1 in 10,000 chance"),
    (1e-9, "less than 1 in a million"), (0.7, "could well be noise"), (float("nan"), None),
    (0, None), ("0.01", None)])
def test_p_values_become_odds_a_person_can_hold(p_value: Any, words: str | None) -> None:
    from upstream.domain.notify.words import noise_chance

    said = noise_chance(p_value)
    assert (said is None) if words is None else (said is not None and words in said)


def test_html_and_script_from_data_are_escaped_everywhere() -> None:
    evil = alert(title=EVIL, summary=EVIL, payer=EVIL,
                 evidence={**alert()["evidence"], "top_carc": [
                     {"code": "CO-16", "meaning": EVIL, "denied": 1, "denied_dollars": 1.0}]},
                 recommended_actions=[EVIL])
    _, html = _parts(email_message(evil, "a@upstream.test", ["b@example.com"], "https://u.test",
                                   EVIL))
    assert "<script>" not in html and "&lt;script&gt;" in html and "<b>Aetna" not in html
    # Slack parses mrkdwn (and the notification `text`); plain_text shows as typed.
    message = slack_message(evil, "https://u.test")
    mrkdwn = [message["text"]] + [t["text"] for t in _mrkdwn(message["blocks"])]
    assert all("<script>" not in t and "<b>" not in t for t in mrkdwn)
    assert any("&lt;script&gt;" in t for t in mrkdwn)
    assert "\n" not in subject(alert(title="a\r\nBcc: victim@example.com"))


def _mrkdwn(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node] if node.get("type") == "mrkdwn" else []
        return found + [x for v in node.values() for x in _mrkdwn(v)]
    if isinstance(node, list):
        return [x for v in node for x in _mrkdwn(v)]
    return []


def test_slack_message_is_block_kit_within_limits() -> None:
    message = slack_message(alert(summary="x" * 5000), "https://u.test")
    kinds = [b["type"] for b in message["blocks"]]
    assert kinds[0] == "header" and "actions" in kinds
    assert len(message["blocks"][0]["text"]["text"]) <= 150
    assert all(len(b["text"]["text"]) <= 3000 for b in message["blocks"] if b["type"] == "section"
               and "text" in b)


def test_the_outbound_webhook_is_signed_as_inbound_ones_are_verified() -> None:
    body, headers = webhook_request(alert(), b"s" * 32, str(int(NOON.timestamp())))
    assert json.loads(body)["alert_id"] == "a1b2"
    assert verify_ehr_signature(body, headers["X-Timestamp"], headers["X-Signature"],
                                [b"s" * 32], NOON)
    assert not verify_ehr_signature(body + b" ", headers["X-Timestamp"],
                                    headers["X-Signature"], [b"s" * 32], NOON)


@given(st.dictionaries(st.sampled_from(["title", "summary", "payer", "severity", "type"]),
                       st.text(max_size=40)),
       st.dictionaries(st.text(max_size=10), st.one_of(st.none(), st.floats(allow_nan=True),
                                                        st.text(max_size=10), st.integers())))
def test_any_alert_content_renders_on_every_channel(fields: dict[str, str],
                                                     metrics: dict[str, Any]) -> None:
    odd = alert(**fields, metrics=metrics, evidence={"top_carc": [{}], "affected_lines": [{}]})
    email_message(odd, "a@upstream.test", ["b@example.com"], "https://u.test", "P")
    json.dumps(slack_message(odd, "https://u.test"))
    webhook_request(odd, b"k", "1")
