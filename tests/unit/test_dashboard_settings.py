"""The settings page: every section saved through the API's own model, errors beside the
field with nothing changed, hostile text escaped, roles, and "Send a test" through the
dispatcher (which alone holds the channels' credentials)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_detector_runs import Event
from tests.unit.test_dispatch_alerts import deps
from tests.unit.test_people import people_dashboard, person_cookie
from upstream.domain.practice import settings_forms as forms
from upstream.services.channel_test import request_body
from upstream.services.dashboard import DashboardDeps
from upstream.services.dispatch_alerts import handle_alert_event
from upstream.services.web_pages import Page

HOSTILE = "<script>alert('x')</script>"


def _owner() -> tuple[DashboardDeps, Any, str, str, list[tuple[str, str, str]]]:
    base, stores, _, _ = people_dashboard()
    tested: list[tuple[str, str, str]] = []
    dashboard = DashboardDeps(stores=stores, session_key=base.session_key, clock=base.clock,
                              identity=base.identity, sign_in=base.sign_in,
                              test_channel=lambda c, ch, by: tested.append((c, ch, by)))
    cookie = person_cookie(dashboard, "owner@acme.test", "owner-password")
    from tests.unit.test_dashboard import request

    page = request(dashboard, "GET", "/settings", cookie)
    assert page.status == 200, page.html
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.html)
    assert csrf
    return dashboard, stores, cookie, csrf.group(1), tested


def _post(dashboard: DashboardDeps, cookie: str, csrf: str, section: str,
          form: dict[str, str]) -> Page:
    from tests.unit.test_dashboard import request

    return request(dashboard, "POST", f"/settings/{section}", cookie, {"csrf": csrf, **form})


def test_a_channel_is_added_and_a_bad_address_is_refused_beside_its_field() -> None:
    dashboard, stores, cookie, csrf, _ = _owner()
    bad = _post(dashboard, cookie, csrf, "notifications", {
        "timezone": "America/Chicago", "weekly_alert_budget": "12", "chnew_id": "billing",
        "chnew_kind": "email", "chnew_min_severity": "HIGH", "chnew_mode": "realtime",
        "chnew_recipients": "not-an-address, ok@acme.test"})
    assert bad.status == 400 and "not e-mail addresses" in bad.html
    assert 'value="not-an-address, ok@acme.test"' in bad.html  # what was typed stays
    assert "notifications" not in stores.tenants["acme"]
    good = _post(dashboard, cookie, csrf, "notifications", {
        "timezone": "America/Chicago", "weekly_alert_budget": "12", "chnew_id": "billing",
        "chnew_kind": "email", "chnew_min_severity": "HIGH", "chnew_mode": "realtime",
        "chnew_recipients": "a@acme.test; b@acme.test", "chnew_weekly_summary": "on",
        "chnew_quiet_start": "22:00", "chnew_quiet_end": "07:00"})
    assert good.status == 303 and good.headers["Location"].startswith("/settings?done=saved")
    saved = stores.tenants["acme"]["notifications"]
    assert saved["timezone"] == "America/Chicago" and saved["weekly_alert_budget"] == 12
    (channel,) = saved["channels"]
    assert channel["recipients"] == ["a@acme.test", "b@acme.test"]
    assert channel["quiet_hours"] == {"start": "22:00:00", "end": "07:00:00"}
    removed = _post(dashboard, cookie, csrf, "notifications", {
        "timezone": "America/Chicago", "ch0_id": "billing", "ch0_kind": "email",
        "ch0_recipients": "a@acme.test", "ch0_remove": "on"})
    assert removed.status == 303 and stores.tenants["acme"]["notifications"]["channels"] == []


def test_each_section_saves_through_the_api_model_or_says_where_it_is_wrong() -> None:
    dashboard, stores, cookie, csrf, _ = _owner()
    cases: list[tuple[str, dict[str, str], str]] = [
        ("practice", {"kx_thresholds": "2026 = lots"}, "kx_thresholds"),
        ("practice", {"visit_limits": "Aetna = 0"}, "visit_limits"),
        ("practice", {"payer_aliases": "no equals sign"}, "payer_aliases"),
        ("practice", {"state": "Texas"}, "state"),
        ("automation", {"confidence_threshold": "10"}, "confidence_threshold"),
        ("automation", {"escalation_contacts": "someone"}, "escalation_contacts"),
        ("providers", {"providers": "123, BCBA"}, "providers"),
        ("providers", {"providers": "1234567890"}, "providers"),
        ("risk_rules", {"modifiers": "payer,cpt,oops\nAetna,97153,HN"}, "modifiers"),
        ("risk_rules", {"modifiers": "payer,cpt,modifiers\nAetna,97153,hn"}, "modifiers"),
    ]
    before = json.dumps(stores.tenants["acme"], sort_keys=True, default=str)
    for section, form, field in cases:
        page = _post(dashboard, cookie, csrf, section, form)
        assert page.status == 400, (section, form)
        assert f'data-field="{field}"' in page.html, (section, form, page.html[-3000:])
    assert json.dumps(stores.tenants["acme"], sort_keys=True, default=str) == before
    assert _post(dashboard, cookie, csrf, "practice", {
        "state": "tx", "esrd_base_rate": "$281.71", "payer_aliases": "BCBS TX = Blue Cross",
        "visit_limits": "Aetna = 30", "kx_thresholds": "2026 = 2,480.00"}).status == 303
    tenant = stores.tenants["acme"]
    assert (tenant["state"], tenant["esrd_base_rate_cents"]) == ("TX", 28171)
    assert tenant["kx_thresholds"] == {"2026": 248000}
    assert tenant["payer_aliases"] == {"BCBS TX": "Blue Cross"}
    assert _post(dashboard, cookie, csrf, "automation", {
        "auto_execute": "on", "confidence_threshold": "97", "dollar_threshold": "500",
        "allow_hold_claim": "on", "escalation_contacts": "lead@acme.test"}).status == 303
    assert tenant["automation"]["allowed_actions"] == ["hold_claim"]
    assert tenant["automation"]["dollar_threshold_cents"] == 50000
    assert _post(dashboard, cookie, csrf, "providers", {
        "providers": "1234567890, BCBA, 2027-06-30\n\n1234567891, RBT"}).status == 303
    assert tenant["providers"]["1234567890"]["expires"] == "2027-06-30"
    assert _post(dashboard, cookie, csrf, "risk_rules", {
        "modifiers": "payer,cpt,modifiers,when_credential\nAetna,97153,HM,RBT",
        "prior_auth": "payer,cpt\nAetna,70551", "disable_defaults": "on"}).status == 303
    assert tenant["risk_rules"]["modifiers"][0]["modifiers"] == "HM"
    shown = _settings_html(dashboard, cookie)
    assert "1234567890, BCBA, 2027-06-30" in shown and "2026 = 2480.00" in shown
    assert "Aetna,,,97153,HM,RBT,20,15," in shown  # every column, defaults filled


def _settings_html(dashboard: DashboardDeps, cookie: str) -> str:
    from tests.unit.test_dashboard import request

    return request(dashboard, "GET", "/settings", cookie).html


def test_hostile_settings_are_escaped_everywhere_they_are_shown() -> None:
    dashboard, stores, cookie, csrf, _ = _owner()
    stores.tenants["acme"]["payer_aliases"] = {HOSTILE: HOSTILE}
    stores.tenants["acme"]["notifications"] = {"channels": [
        {"id": "x", "kind": "webhook", "url": "https://e.example/\"><script>", "recipients": []}]}
    html = _settings_html(dashboard, cookie)
    assert "<script>" not in html and "&lt;script&gt;" in html
    page = _post(dashboard, cookie, csrf, "practice", {"visit_limits": f"{HOSTILE} = x"})
    assert page.status == 400 and "<script>" not in page.html


def test_only_owners_and_admins_reach_settings() -> None:
    from tests.unit.test_dashboard import request

    dashboard, _, _, _, _ = _owner()
    for email, password in (("viewer@acme.test", "viewer-password"),
                            ("biller@acme.test", "biller-password")):
        cookie = person_cookie(dashboard, email, password)
        assert request(dashboard, "GET", "/settings", cookie).status == 403
        home = request(dashboard, "GET", "/", cookie).html
        assert 'href="/settings"' not in home


def test_send_a_test_asks_the_dispatcher_for_a_saved_channel_only() -> None:
    from tests.unit.test_dashboard import request

    dashboard, stores, cookie, csrf, tested = _owner()
    missing = request(dashboard, "POST", "/settings/channels/billing/test", cookie,
                      {"csrf": csrf})
    assert missing.status == 404 and tested == []
    stores.tenants["acme"]["notifications"] = {"channels": [
        {"id": "billing", "kind": "email", "recipients": ["a@acme.test"]}]}
    sent = request(dashboard, "POST", "/settings/channels/billing/test", cookie, {"csrf": csrf})
    assert sent.status == 303 and "test-sent" in sent.headers["Location"]
    assert tested == [("acme", "billing", "owner@acme.test")]
    assert request(dashboard, "POST", "/settings/channels/billing/test", cookie,
                   {}).status == 403  # no CSRF token
    assert stores.audit["acme"][-1]["action"] == "POST /settings/channels/<channel_id>/test"


def test_the_dispatcher_sends_a_channel_test_once_and_records_a_bad_one() -> None:
    d, log, smtp, http, publisher, _ = deps()
    test_id = "a" * 32
    body = request_body("acme", "mail", test_id, "owner@acme.test")
    assert handle_alert_event(Event(body), d)["status"] == "tested"
    assert handle_alert_event(Event(body), d)["status"] == "already_done"  # redelivered
    (message,) = smtp.sent
    assert "channel mail works" in str(message["Subject"])
    assert "owner@acme.test" in message.get_content()
    assert handle_alert_event(Event(request_body("acme", "team", "b" * 32, "o")),
                              d)["status"] == "tested"
    assert handle_alert_event(Event(request_body("acme", "erp", "c" * 32, "o")),
                              d)["status"] == "tested"
    assert len(http.posts) == 2 and http.posts[1][2]["X-Signature"].startswith("sha256=")
    gone = handle_alert_event(Event(request_body("acme", "nope", "d" * 32, "o")), d)
    assert gone["status"] == "no_such_channel"
    assert log.docs[f"test.{'d' * 32}.nope"]["status"] == "failed"
    for bad in (b'{"test": "channel", "customer": "../x", "channel": "m", "test_id": "1", '
                b'"by": "o"}', b'{"test": "everything"}'):
        assert handle_alert_event(Event(bad), d)["status"] == "dead_lettered"
    assert publisher.messages[-1][0] == "alerts-dlq"


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from([
    "timezone", "weekly_alert_budget", "ch0_id", "ch0_kind", "ch0_recipients", "ch0_url",
    "ch0_quiet_start", "chnew_id", "chnew_types", "payer_aliases", "visit_limits",
    "kx_thresholds", "state", "esrd_base_rate", "confidence_threshold", "dollar_threshold",
    "escalation_contacts", "providers", "modifiers", "prior_auth"]), st.text(max_size=80),
    max_size=8))
def test_any_typed_form_is_a_body_or_a_field_error(form: dict[str, str]) -> None:
    from pydantic import ValidationError

    from upstream.services.api_requests import SettingsBody

    for section, parser in forms.PARSERS.items():
        try:
            body = parser(form)
        except forms.FormError as exc:
            assert exc.field and str(exc)
            continue
        try:
            SettingsBody.model_validate(body)
        except ValidationError as exc:
            for error in exc.errors():
                assert forms.field_of(tuple(error["loc"])), section


@pytest.mark.parametrize("text", ["2410", "$2,410.00", " 2410.5 "])
def test_dollars_become_cents(text: str) -> None:
    assert forms.practice({"kx_thresholds": f"2026 = {text}"})["kx_thresholds"]["2026"] in (
        241000, 241050)
