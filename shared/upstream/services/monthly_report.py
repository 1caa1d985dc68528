"""Gathering the monthly practice report (`domain/notify/monthly.py`) from the stores that hold
it: shared by the dashboard's report page and the first-Monday e-mail, so both say the same."""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol

from upstream.domain.aggregates import DailyCell
from upstream.domain.notify.monthly import MonthlyReport, build, month_bounds
from upstream.domain.practice.gains import as_day, gains, line_doc_ids


class MonthlySources(Protocol):
    def alerts_since(self, customer_id: str, since: date) -> list[dict[str, Any]]: ...

    def cells(self, customer_id: str, first: date, end: date) -> list[DailyCell]: ...

    def authorizations(self, customer_id: str) -> list[dict[str, Any]]: ...

    def claim_lines(self, customer: str, doc_ids: list[str]) -> dict[str, dict[str, Any]]: ...

    def executed_actions(self, customer_id: str, first: date, end: date) -> int: ...


def monthly_report(customer: str, month: str, sources: MonthlySources) -> MonthlyReport:
    prior_start, first, end = month_bounds(month)
    alerts = sources.alerts_since(customer, prior_start)
    raised = [a for a in alerts
              if first.isoformat() <= str(a.get("first_seen") or "")[:10] < end.isoformat()]
    in_month = [a for a in sources.authorizations(customer)
                if (marked := as_day(a.get("status_set_at"))) and first <= marked < end]
    gained = gains(raised, sources.claim_lines(customer, list(line_doc_ids(raised))), in_month)
    return build(month, sources.cells(customer, prior_start, end), alerts,
                 gained.recovered_cents, gained.recovered_lines, gained.renewed_in_time,
                 sources.executed_actions(customer, first, end))


def report_html(report: MonthlyReport, practice: str) -> str:
    from upstream.web import render

    return render("monthly_report.html", nonce="", report=report, practice=practice)
