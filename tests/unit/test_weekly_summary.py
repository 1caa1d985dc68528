"""The weekly summary: figures (pure) and its sending through the dispatcher (fakes)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from tests.unit.test_detector_runs import Event
from tests.unit.test_dispatch_alerts import deps
from upstream.domain.aggregates import DailyCell
from upstream.domain.notify.weekly import summarize, weekly_email

MONDAY = date(2026, 1, 5)


def cells() -> list[DailyCell]:
    found = []
    for back in range(1, 36):
        day = MONDAY - timedelta(days=back)
        this_week = back <= 7
        found.append(DailyCell("Aetna", day, {"denied_cents": 30000 if this_week else 10000}))
        found.append(DailyCell("Cigna <b>", day, {"denied_cents": 5000}))
    found.append(DailyCell("Humana", MONDAY - timedelta(days=2), {"denied_cents": 100}))
    return found


ALERTS: list[dict[str, Any]] = [
          {"alert_id": "1", "type": "denial_rate_drift", "created_at": "2026-01-02",
           "status": "open"},
          {"alert_id": "2", "type": "auth_expiring", "created_at": "2025-12-29",
           "status": "acknowledged"},
          {"alert_id": "3", "type": "payment_delay", "created_at": "2026-01-04",
           "status": "noise"},
          {"alert_id": "4", "type": "payment_delay", "created_at": "2025-12-20",
           "status": "open"}]  # the week before: not counted
AUTHS: list[dict[str, Any]] = [
         {"authorization_number": "A1", "payer": "Aetna", "end_date": "2026-01-20",
          "units_used": 30, "units_authorized": 40},
         {"authorization_number": "A2", "payer": "Aetna", "end_date": "2026-03-01"},
         {"authorization_number": "A3", "payer": "Cigna", "end_date": "2026-01-10",
          "status": "RENEWED"}]


def test_the_week_in_figures() -> None:
    summary = summarize(ALERTS, cells(), AUTHS, MONDAY)
    assert summary.raised == 3
    assert summary.by_status == {"open": 1, "acknowledged": 1, "noise": 1}
    aetna, cigna, humana = summary.payers
    assert (aetna.payer, aetna.denied_dollars, aetna.prior_weekly_dollars) == (
        "Aetna", 2100.0, 700.0)
    assert round(aetna.change or 0, 2) == 2.0
    assert cigna.change == 0 and humana.change is None  # no prior weeks: "new"
    assert [a["authorization_number"] for a in summary.expiring] == ["A1"]


def test_the_email_escapes_payer_names_and_reads_in_plain_text() -> None:
    message = weekly_email(summarize(ALERTS, cells(), AUTHS, MONDAY), "a@upstream.test",
                           ["cfo@example.com"], "Acme", "https://u.test")
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Cigna &lt;b&gt;" in html and "<b>" not in html
    assert "3 alerts raised, 1 acknowledged, 1 marked noise, 1 authorizations" in text
    assert "$2,100.00" in text and "+200%" in text and "new" in text
    assert "2025-12-29 to 2026-01-04" in message["Subject"]


def test_an_empty_week_still_says_so() -> None:
    summary = summarize([], [], [], MONDAY)
    text = weekly_email(summary, "a@u.test", ["b@example.com"], "P", "https://u").get_body(
        ("plain",)).get_content()  # type: ignore[union-attr]
    assert "0 alerts raised" in text


class Sources:
    def alerts_since(self, customer_id: str, since: date) -> list[dict[str, Any]]:
        return ALERTS

    def cells(self, customer_id: str, first: date, end: date) -> list[DailyCell]:
        return cells()

    def authorizations(self, customer_id: str) -> list[dict[str, Any]]:
        return AUTHS


def test_monday_summary_goes_to_email_channels_once() -> None:
    from dataclasses import replace

    d, _, smtp, http, publisher, _ = deps()
    d = replace(d, weekly=Sources())
    fan = handle(d, {"summary": "weekly", "customer": "*", "week_end": MONDAY.isoformat()})
    assert fan == {"status": "fanned_out", "tenants": 1}
    request = publisher.messages[-1][1]
    result = handle(d, json.loads(request))
    assert result["channels"] == {"mail": "delivered", "weekly": "delivered"}
    assert {m["To"] for m in smtp.sent} == {"rcm@example.com", "cfo@example.com"}
    assert http.posts == []  # Slack and webhooks do not get it
    assert handle(d, json.loads(request))["channels"] == {"mail": "already",
                                                          "weekly": "already"}


def handle(d: Any, payload: dict[str, Any]) -> dict[str, Any]:
    from upstream.services.dispatch_alerts import handle_alert_event

    return handle_alert_event(Event(json.dumps(payload).encode()), d)
