"""The monthly practice report: the month against the prior quarter, alerts by usefulness, the
gains of the month; as CSV and PDF in the dashboard and e-mailed once on the first Monday."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from tests.unit.test_dashboard import request
from tests.unit.test_detector_runs import Event
from tests.unit.test_dispatch_alerts import deps as dispatch_deps
from tests.unit.test_notify import alert
from tests.unit.test_people import people_dashboard, person_cookie
from upstream.adapters.pdf import html_to_pdf
from upstream.domain.aggregates import DailyCell
from upstream.domain.notify.monthly import build, month_bounds, previous_month, to_csv
from upstream.domain.records import claim_line_doc_id
from upstream.services.dashboard import DashboardDeps
from upstream.services.dispatch_alerts import handle_alert_event


def _cell(payer: str, day: date, decided: int, denied: int, cents: int) -> DailyCell:
    return DailyCell(payer, day, {"decided": decided, "denied": denied, "denied_cents": cents})


CELLS = [_cell("Aetna", date(2025, 12, 3), 100, 20, 200_000),
         _cell("Aetna", date(2025, 10, 3), 300, 30, 300_000),
         _cell("=Evil", date(2025, 12, 4), 10, 1, 1000),
         _cell("Aetna", date(2025, 8, 30), 999, 999, 9_999_999)]  # before the prior quarter
ALERTS = [alert(alert_id="m1", first_seen="2025-12-02", status="resolved"),
          alert(alert_id="m2", first_seen="2025-12-09", status="noise"),
          alert(alert_id="m3", first_seen="2025-12-10", status="open",
                feedback=[{"useful": True}]),
          alert(alert_id="m4", first_seen="2025-11-30", status="resolved")]


class Sources:
    def alerts_since(self, customer_id: str, since: date) -> list[dict[str, Any]]:
        return [a for a in ALERTS if str(a["first_seen"]) >= since.isoformat()] \
            if customer_id == "acme" else []

    def cells(self, customer_id: str, first: date, end: date) -> list[DailyCell]:
        return [c for c in CELLS if first <= c.day < end] if customer_id == "acme" else []

    def authorizations(self, customer_id: str) -> list[dict[str, Any]]:
        return [{"status": "RENEWED", "end_date": "2025-12-31",
                 "status_set_at": datetime(2025, 12, 20, tzinfo=UTC)}]

    def claim_lines(self, customer: str, doc_ids: list[str]) -> dict[str, dict[str, Any]]:
        return {claim_line_doc_id("C1", "L1"): {"outcome": "PAID", "decided_date": "2025-12-20",
                                                "paid_cents": 4200}}

    def executed_actions(self, customer_id: str, first: date, end: date) -> int:
        return 3


def test_bounds_and_the_previous_month() -> None:
    assert month_bounds("2026-01") == (date(2025, 10, 1), date(2026, 1, 1), date(2026, 2, 1))
    assert month_bounds("2025-12") == (date(2025, 9, 1), date(2025, 12, 1), date(2026, 1, 1))
    assert previous_month(date(2026, 1, 5)) == "2025-12"
    assert previous_month(date(2026, 3, 2)) == "2026-02"


def test_the_month_against_the_prior_quarter_and_alerts_by_usefulness() -> None:
    report = build("2025-12", CELLS, ALERTS, 4200, 1, 1, 3)
    aetna = next(p for p in report.payers if p.payer == "Aetna")
    assert (aetna.decided, aetna.denied, aetna.denied_dollars) == (100, 20, 2000.0)
    assert aetna.rate == 0.2 and aetna.prior_rate == 0.1
    assert aetna.prior_monthly_dollars == 1000.0  # $3,000 over three months
    assert (report.alerts_raised, report.alerts_useful, report.alerts_noise) == (3, 2, 1)
    rows = list(csv.reader(io.StringIO(to_csv(report))))
    assert rows[0][0] == "month" and any(r[1] == "'=Evil" for r in rows if len(r) > 1)
    assert ["2025-12", "recovered_dollars", "42.00"] in rows


def _dashboard() -> tuple[DashboardDeps, str]:
    base, stores, _, _ = people_dashboard()
    deps = DashboardDeps(stores=stores, session_key=base.session_key, clock=base.clock,
                         identity=base.identity, sign_in=base.sign_in, pdf=html_to_pdf,
                         monthly=Sources())
    return deps, person_cookie(deps, "viewer@acme.test", "viewer-password")


def test_the_dashboard_serves_last_months_report_as_csv_and_pdf() -> None:
    deps, cookie = _dashboard()
    as_csv = request(deps, "GET", "/reports/monthly.csv", cookie, query={"month": "2025-12"})
    assert as_csv.status == 200 and "Aetna" in as_csv.html and "2025-12" in as_csv.html
    as_pdf = request(deps, "GET", "/reports/monthly.pdf", cookie, query={"month": "2025-12"})
    assert as_pdf.status == 200 and as_pdf.body is not None and as_pdf.body.startswith(b"%PDF")
    for bad in ("2025-13", "last", "../x", "2025-1"):
        assert request(deps, "GET", "/reports/monthly.csv", cookie,
                       query={"month": bad}).status == 400
    assert 'id="monthly-pdf"' in request(deps, "GET", "/", cookie).html


def _monthly(d: Any, **message: Any) -> dict[str, Any]:
    return handle_alert_event(Event(json.dumps({"report": "monthly", **message}).encode()), d)


def test_the_report_is_mailed_on_the_first_monday_once_per_channel() -> None:
    base, _, smtp, _, publisher, _ = dispatch_deps()
    d = dataclasses.replace(base, monthly=Sources(), pdf=html_to_pdf)
    assert _monthly(d, customer="*", day="2026-01-12")["status"] == "not_the_first_monday"
    fanned = _monthly(d, customer="*", day="2026-01-05")
    assert fanned == {"status": "fanned_out", "tenants": 1}
    assert json.loads(publisher.messages[-1][1])["month"] == "2025-12"
    sent = _monthly(d, customer="acme", month="2025-12")
    assert sent["status"] == "monthly_report"
    assert smtp.sent and set(sent["channels"].values()) == {"delivered"}
    for message in smtp.sent:
        names = [part.get_filename() for part in message.iter_attachments()]
        assert names == ["upstream-2025-12.pdf", "upstream-2025-12.csv"]
    mailed = len(smtp.sent)
    again = _monthly(d, customer="acme", month="2025-12")
    assert set(again["channels"].values()) == {"already"} and len(smtp.sent) == mailed


@pytest.mark.parametrize("body", [{"customer": "acme", "month": "2025-13"},
                                  {"customer": "../x"}, {"customer": "acme", "extra": 1}])
def test_a_malformed_report_request_is_dead_lettered(body: dict[str, Any]) -> None:
    d, _, _, _, publisher, _ = dispatch_deps()
    assert _monthly(d, **body)["status"] == "dead_lettered"
    assert publisher.messages[-1][0] == "alerts-dlq"
