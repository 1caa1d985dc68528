"""The dashboard with in-memory stores: sign-in, sessions, CSRF, tenants, escaping, the view
model's numbers. The same pages on the stack in a real Chromium: tests/e2e."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from hypothesis import given
from hypothesis import strategies as st

from tests.unit.test_api import NOW, Stores, setup
from tests.unit.test_notify import alert
from upstream.domain import dashboard as view
from upstream.domain import session as sessions
from upstream.domain.aggregates import DailyCell
from upstream.domain.notify import chart
from upstream.services.dashboard import DashboardDeps, handle
from upstream.services.dashboard_signin import FORM_COOKIE
from upstream.services.web_pages import Page, WebRequest

SECRET = b"k" * 32
FORM_TOKEN = "f" * 32
HOSTILE = "<script>alert('x')</script>"


class DashStores(Stores):
    def __init__(self) -> None:
        super().__init__()
        self.deliveries: dict[str, list[dict[str, Any]]] = {"acme": [], "beta": []}
        self.flagged: dict[str, list[dict[str, Any]]] = {"acme": [], "beta": []}
        self.lines: dict[str, dict[str, dict[str, Any]]] = {"acme": {}, "beta": {}}

    def failed_deliveries(self, customer: str, limit: int) -> list[dict[str, Any]]:
        return [d for d in self.deliveries[customer] if d.get("status") == "failed"][:limit]

    def last_run_day(self, customer: str) -> date | None:
        return date(2026, 1, 7) if customer == "acme" else None

    def flagged_lines(self, customer: str, limit: int) -> list[dict[str, Any]]:
        return list(self.flagged.get(customer, []))[:limit]

    def claim_lines(self, customer: str, doc_ids: list[str]) -> dict[str, dict[str, Any]]:
        return {d: line for d, line in self.lines.get(customer, {}).items() if d in doc_ids}


def deps_and_tokens() -> tuple[DashboardDeps, DashStores, dict[str, str]]:
    api_deps, plain, tokens = setup()
    stores = DashStores()
    stores.keys, stores.alerts = plain.keys, plain.alerts
    del api_deps
    return DashboardDeps(stores=stores, session_key=lambda: SECRET, clock=lambda: NOW), \
        stores, tokens


def request(deps: DashboardDeps, method: str, path: str, cookie: str | None = None,
            form: dict[str, str] | None = None, query: dict[str, str] | None = None,
            secure: bool = False, body: bytes | None = None) -> Page:
    # A browser that opened the sign-in form holds its double-submit cookie; tests post with it.
    jar = [f"{FORM_COOKIE}={FORM_TOKEN}"] + ([f"{sessions.COOKIE}={cookie}"] if cookie else [])
    headers = {"Cookie": "; ".join(jar)}
    if path in ("/login", "/welcome") and form is not None:
        form = {"form_token": FORM_TOKEN, **form}
    raw = body if body is not None else urlencode(form or {}).encode()
    return handle(WebRequest(method, path, query or {}, headers, raw, secure), deps)


def sign_in(deps: DashboardDeps, token: str) -> str:
    page = request(deps, "POST", "/login", form={"key": token, "next": "/"})
    assert page.status == 303, page.html
    match = re.match(rf"{sessions.COOKIE}=([^;]*);", page.headers["Set-Cookie"])
    assert match
    return match.group(1)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match
    return match.group(1)


def test_sign_in_sets_a_strict_http_only_cookie_and_refuses_bad_keys() -> None:
    deps, _, tokens = deps_and_tokens()
    form = request(deps, "GET", "/login")
    assert form.status == 200 and 'name="key"' in form.html
    good = request(deps, "POST", "/login", form={"key": tokens["read"]}, secure=True)
    assert good.status == 303 and good.headers["Location"] == "/"
    cookie = good.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" in cookie
    assert "Secure" not in request(deps, "POST", "/login",
                                   form={"key": tokens["read"]}).headers["Set-Cookie"]
    bodies = set()
    for bad in (tokens["revoked"], tokens["expired"], tokens["read"][:-2] + "AA", "upk_nonsense",
                "", HOSTILE):
        page = request(deps, "POST", "/login", form={"key": bad})
        assert page.status == 401 and "Set-Cookie" not in page.headers
        bodies.add(re.sub(r'nonce="[^"]+"', "", page.html))
    assert len(bodies) == 1  # one answer for every refused key


def test_pages_need_a_session_and_redirect_only_on_site() -> None:
    deps, _, tokens = deps_and_tokens()
    page = request(deps, "GET", "/")
    assert page.status == 303 and page.headers["Location"] == "/login?next=/"
    assert request(deps, "POST", "/alerts/a1/acknowledge").status == 401
    for target in ("//evil.example/x", "https://evil.example", "/\\evil.example", "/ok\r\nX: y"):
        page = request(deps, "POST", "/login", form={"key": tokens["read"], "next": target})
        assert page.headers["Location"] == "/"
    page = request(deps, "POST", "/login", form={"key": tokens["read"], "next": "/alerts/a1"})
    assert page.headers["Location"] == "/alerts/a1"


def test_overview_shows_open_alerts_escaped_with_a_strict_policy() -> None:
    deps, stores, tokens = deps_and_tokens()
    stores.alerts["acme"]["evil"] = alert(alert_id="evil", payer=HOSTILE, title=HOSTILE,
                                          evidence={"top_carc": [{"code": "CO-1",
                                                                  "meaning": HOSTILE}]})
    stores.deliveries["acme"].append({"status": "failed", "alert_id": "evil",
                                      "channel": "slack", "error": HOSTILE,
                                      "attempts": [{}, {}]})
    page = request(deps, "GET", "/", sign_in(deps, tokens["read"]))
    assert page.status == 200
    assert "<script" not in page.html.lower()
    assert "&lt;script&gt;" in page.html
    assert "script-src" not in page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    assert 'data-alert-id="a1"' in page.html and "Data as of 2026-01-07" in page.html
    assert "can look but not change" in page.html and 'data-action="acknowledge"' not in page.html


def test_acknowledge_needs_csrf_and_write_and_is_logged() -> None:
    deps, stores, tokens = deps_and_tokens()
    reader = sign_in(deps, tokens["read"])
    reader_csrf = csrf_of(request(deps, "GET", "/", reader).html)
    refused = request(deps, "POST", "/alerts/a1/acknowledge", reader, {"csrf": reader_csrf})
    assert refused.status == 403 and stores.alerts["acme"]["a1"]["status"] == "open"
    writer = sign_in(deps, tokens["write"])
    page = request(deps, "GET", "/", writer)
    assert 'data-action="acknowledge"' in page.html
    assert request(deps, "POST", "/alerts/a1/acknowledge", writer, {}).status == 403
    assert request(deps, "POST", "/alerts/a1/acknowledge", writer,
                   {"csrf": reader_csrf}).status == 403  # another session's token
    done = request(deps, "POST", "/alerts/a1/acknowledge", writer,
                   {"csrf": csrf_of(page.html), "next": "/#alerts"})
    assert done.status == 303 and done.headers["Location"] == "/?done=acknowledge#alerts"
    stored = stores.alerts["acme"]["a1"]
    assert stored["status"] == "acknowledged"
    assert stored["history"][-1]["by"].startswith("dashboard:")
    after = request(deps, "GET", "/", writer, query={"done": "acknowledge"})
    assert "Acknowledged" in after.html and 'data-status="acknowledged"' in after.html


def test_another_tenants_ids_and_unknown_things_are_404() -> None:
    deps, stores, tokens = deps_and_tokens()
    stores.alerts["beta"]["theirs"] = alert(alert_id="theirs", customer_id="beta")
    writer = sign_in(deps, tokens["write"])
    csrf = csrf_of(request(deps, "GET", "/", writer).html)
    assert request(deps, "GET", "/alerts/theirs", writer).status == 404
    assert request(deps, "POST", "/alerts/theirs/noise", writer, {"csrf": csrf}).status == 404
    assert stores.alerts["beta"]["theirs"]["status"] == "open"
    assert request(deps, "POST", "/alerts/a1/delete", writer, {"csrf": csrf}).status == 404
    assert request(deps, "POST", "/authorizations/NOPE/renewed", writer,
                   {"csrf": csrf}).status == 404
    assert request(deps, "GET", "/nowhere", writer).status == 404
    assert request(deps, "GET", "/alerts/a1/acknowledge", writer).status == 405
    assert request(deps, "POST", "/authorizations/A1/renewed", writer,
                   {"csrf": csrf}).status == 303
    assert stores.auths["acme"][0]["status"] == "RENEWED"


def test_revoked_key_ends_its_sessions_and_cookies_cannot_be_forged() -> None:
    deps, stores, tokens = deps_and_tokens()
    cookie = sign_in(deps, tokens["write"])
    assert request(deps, "GET", "/", cookie).status == 200
    payload, mac = cookie.split(".")
    assert request(deps, "GET", "/", f"{payload}.{mac[:-2]}xx").status == 303
    beta_cookie, _ = sessions.issue(b"other" * 8, "acme", "x", ["write"], NOW)
    assert request(deps, "GET", "/", beta_cookie).status == 303
    key_id = tokens["write"].split("_")[1]
    stores.keys[key_id]["revoked_at"] = NOW
    assert request(deps, "GET", "/", cookie).status == 303


def test_expired_session_and_oversized_forms() -> None:
    deps, _, tokens = deps_and_tokens()
    cookie = sign_in(deps, tokens["write"])
    later = DashboardDeps(stores=deps.stores, session_key=deps.session_key,
                          clock=lambda: NOW + timedelta(hours=sessions.SESSION_HOURS + 1))
    assert request(later, "GET", "/", cookie).status == 303
    assert request(deps, "POST", "/login", body=b"key=" + b"x" * 300_000).status == 413
    # Not UTF-8: no form at all, so no form token either (refused before any key is read).
    assert request(deps, "POST", "/login", body=b"\xff\xfe").status == 403
    garbled = b"form_token=" + FORM_TOKEN.encode() + b"&key=\xff\xfe"
    assert request(deps, "POST", "/login", body=garbled).status == 403


def test_logout_clears_the_cookie() -> None:
    deps, _, tokens = deps_and_tokens()
    cookie = sign_in(deps, tokens["read"])
    csrf = csrf_of(request(deps, "GET", "/", cookie).html)
    page = request(deps, "POST", "/logout", cookie, {"csrf": csrf})
    assert page.status == 303 and "Max-Age=0" in page.headers["Set-Cookie"]


@given(st.text(max_size=200))
def test_no_string_verifies_as_a_session_without_the_key(cookie: str) -> None:
    assert sessions.verify(SECRET, cookie, NOW) is None


@given(st.integers(min_value=0, max_value=200), st.characters(codec="ascii"))
def test_any_one_character_change_breaks_the_cookie(position: int, char: str) -> None:
    cookie, _ = sessions.issue(SECRET, "acme", "k1", ["read"], NOW)
    index = position % len(cookie)
    changed = cookie[:index] + char + cookie[index + 1:]
    if changed != cookie:
        assert sessions.verify(SECRET, changed, NOW) is None


def test_calendar_buckets_follow_the_30_14_3_day_reminders() -> None:
    as_of = date(2026, 1, 10)

    def auth(number: str, days: int, **extra: Any) -> dict[str, Any]:
        return {"authorization_number": number, "payer": "Aetna", "patient_key": "p" + number,
                "start_date": "2025-07-01", "end_date": (as_of + timedelta(days=days)).isoformat(),
                "units_authorized": 100, "units_used": 40, **extra}

    auths = [auth("E", -5), auth("OLD", -90), auth("D3", 2), auth("D14", 10), auth("D30", 25),
             auth("ACT", 120), auth("R", 40, status="RENEWED"), auth("bad", 0, end_date="soon")]
    groups = {g.title: [r.authorization_number for r in g.rows]
              for g in view.auth_calendar(auths, as_of)}
    assert groups == {"Expired": ["E"], "Expires within 3 days": ["D3"],
                      "Expires within 14 days": ["D14"], "Expires within 30 days": ["D30"],
                      "Active": ["ACT"], "Renewed": ["R"]}
    # a follow-on authorization for the same patient and payer renews the one it follows
    follow = auth("NEXT", 200, start_date=(as_of + timedelta(days=3)).isoformat(),
                  patient_key="pD3", service_type=None)
    renewed = {g.title: [r.authorization_number for r in g.rows]
               for g in view.auth_calendar([auth("D3", 2), follow], as_of)}
    assert renewed["Renewed"] == ["D3"]
    row = view.auth_calendar([auth("U", 100)], as_of)[4].rows[0]
    assert row.units == "40 / 100" and row.days_left == 100


def test_trends_lag_medians_markers_and_counts() -> None:
    end = date(2026, 1, 5)
    cells = [DailyCell("Aetna", end - timedelta(days=d),
                       {"decided": 10, "denied": 1 if d > 7 else 5, "lag.12": 3, "lag.30": 1})
             for d in range(1, 90)] + [DailyCell("Tiny", end - timedelta(days=2), {"decided": 1})]
    alerts = [{"payer": "Aetna", "first_seen": (end - timedelta(days=3)).isoformat()},
              {"payer": "Aetna", "first_seen": "not a day"}, {"payer": "Cigna"}]
    trends = view.payer_trends(cells, alerts, end)
    assert [t.payer for t in trends] == ["Aetna", "Tiny"]
    aetna = trends[0]
    assert aetna.alert_weeks == 1 and aetna.last_lag_days == 12.0
    assert aetna.last_rate == 0.5 and aetna.baseline_rate is not None and aetna.baseline_rate < 0.2
    assert aetna.denial_chart and aetna.denial_chart.startswith("data:image/png;base64,")
    assert trends[1].lag_chart is None  # nothing paid
    assert chart.weekly_lag([], "Aetna", end) == [None] * chart.WEEKS
    assert view.counts({"open": [{}], "noise": [{"suppressed": 3}, {}]}) == view.Counts(1, 0, 2, 3)


def test_uploads_and_deliveries_read_whatever_was_stored() -> None:
    rows = view.upload_rows([{"object": "uploads/acme/claims/jan.csv", "kind": "claims",
                              "status": "complete", "rows": 10, "accepted": 8, "rejected": 2,
                              "started_at": "2026-01-02T10:11:12+00:00"}, {}])
    assert rows[0].name == "jan.csv" and rows[0].rejected == 2
    assert rows[0].received == "2026-01-02 10:11" and rows[1].rows == 0
    problems = view.delivery_problems([{"status": "delivered"},
                                       {"status": "failed", "attempts": [{}, {}, {}]}])
    assert len(problems) == 1 and problems[0]["attempts"] == "3"
    assert view.actions_for("noise") == ["reopen"]


@given(st.text(max_size=60))
def test_any_csrf_token_is_refused_without_error(token: str) -> None:
    _, session = sessions.issue(SECRET, "acme", "k1", ["write"], NOW)
    expected = sessions.csrf_token(SECRET, session.nonce)
    assert sessions.csrf_ok(SECRET, session.nonce, token) is (token == expected)
    assert not sessions.csrf_ok(SECRET, "", token)


def test_decisions_approve_and_release_a_hold_with_a_reason() -> None:
    from tests.fakes import FakePublisher
    from tests.unit.test_automation import Store, action
    from tests.unit.test_detector_runs import Alerts
    from tests.unit.test_score_claims import Tenants
    from upstream.services.automation import AutomationDeps, propose

    base, _, tokens = deps_and_tokens()
    store = Store()
    automation = AutomationDeps(tenants=Tenants({"acme": {"automation": {
        "auto_execute": True, "allowed_actions": ["hold_claim"]}}}), store=store,
        alerts=Alerts(), publisher=FakePublisher(), alerts_topic="alerts")  # type: ignore[arg-type]
    queued = propose(action(target=f"claim:{HOSTILE}"), automation)["action_id"]
    held = propose(action(action_type="hold_claim", target="claim:C7"), automation)["action_id"]
    deps = DashboardDeps(stores=base.stores, session_key=base.session_key, clock=base.clock,
                         automation=automation)
    cookie = sign_in(deps, tokens["write"])
    page = request(deps, "GET", "/", cookie)
    assert f'data-action-id="{queued}"' in page.html and "Release hold" in page.html
    assert "<script>alert" not in page.html
    csrf = csrf_of(page.html)
    done = request(deps, "POST", f"/automation/{queued}/approve", cookie, {"csrf": csrf})
    assert done.status == 303 and store.docs[queued]["status"] == "executed"
    short = request(deps, "POST", f"/automation/{held}/release-hold", cookie,
                    {"csrf": csrf, "justification": "ok"})
    assert short.status == 409 and "justification" in short.html
    reason = "Payer confirmed the authorization covers the visit"
    assert request(deps, "POST", f"/automation/{held}/release-hold", cookie,
                   {"csrf": csrf, "justification": reason}).status == 303
    assert store.log[-1]["why"] == reason and store.log[-1]["by"].startswith("dashboard:")
    assert request(deps, "POST", "/automation/nope/approve", cookie,
                   {"csrf": csrf}).status == 404
    assert request(deps, "POST", f"/automation/{held}/explode", cookie,
                   {"csrf": csrf}).status == 404


def test_decision_rows_survive_sparse_documents() -> None:
    rows = view.action_rows([{}, {"action_type": "add_modifier", "details": {"modifier": "GP"},
                                  "tier_reasons": ["a", "b"], "confidence": "97"}])
    assert rows[0]["what"] == "" and rows[0]["confidence"] == 0
    assert rows[1]["what"] == "add modifier GP" and rows[1]["why"] == "a; b"


def test_a_payer_card_says_the_alerts_baseline_marks_its_week_and_links_to_it() -> None:
    """UnitedHealthcare's card said 'baseline 17.9%' (the 13 weeks shown, shift included)
    while its alert said 8%, and the Monday alert had no marker on the chart."""
    end = date(2026, 1, 5)  # a Monday: the run day
    cells = [DailyCell("UnitedHealthcare", end - timedelta(days=d),
                       {"decided": 20, "denied": 2 if d > 42 else 6}) for d in range(1, 92)]
    alert = {"alert_id": "al1", "payer": "UnitedHealthcare", "scope": "payer",
             "type": "denial_rate_drift", "status": "open", "first_seen": end.isoformat(),
             "last_seen": end.isoformat(), "metrics": {"baseline_rate": 0.08},
             "window": {"current_start": (end - timedelta(days=7)).isoformat(),
                        "current_end": (end - timedelta(days=1)).isoformat()}}
    (card,) = view.payer_trends(cells, [alert], end)
    assert card.baseline_rate == 0.08 and card.baseline_from_alert
    assert card.alert_weeks == 1 and card.alert_id == "al1"
    (plain,) = view.payer_trends(cells, [], end)
    assert plain.baseline_rate is not None and plain.baseline_rate > 0.15  # shift included
    run_day_only = {**alert, "window": None}
    assert view.payer_trends(cells, [run_day_only], end)[0].alert_weeks == 1


def test_every_page_and_action_of_a_session_writes_one_audit_entry() -> None:
    """Contract 6 in the dashboard: each page view and action (allowed, refused or unknown)
    leaves one entry through the same recorder as the API; an id that was not found stays
    the route's placeholder; no entry, no page."""
    from upstream.services.dashboard import PAGES

    deps, stores, tokens = deps_and_tokens()
    reader = sign_in(deps, tokens["read"])
    csrf = csrf_of(request(deps, "GET", "/", reader).html)
    examples = {"<alert_id>": "a1", "<action>": "acknowledge", "<number>": "A1",
                "<action_id>": "nope", "<verb>": "approve"}
    for path, method, _, _ in PAGES:
        concrete = path
        for placeholder, value in examples.items():
            concrete = concrete.replace(placeholder, value)
        before = len(stores.audit["acme"])
        page = request(deps, method, concrete, reader, {"csrf": csrf} if method == "POST"
                       else None)
        (entry,) = stores.audit["acme"][before:]
        assert entry["action"] == f"{method} {path}" and entry["outcome"] == page.status
        assert entry["actor"].startswith("dashboard:") and entry["role"] == "read"
        assert "A1" not in entry["resource"]
        if page.status >= 400:
            assert entry["resource"] == path
    other = sign_in(deps, tokens["beta"])
    request(deps, "GET", "/alerts/a1", other)  # acme's alert, asked for by beta
    assert stores.audit["beta"][-1]["resource"] == "/alerts/<alert_id>"
    stores.audit_fails = True
    assert request(deps, "GET", "/", reader).status == 503
