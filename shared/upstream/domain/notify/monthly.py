"""The monthly practice report: what a revenue-cycle director reads on the first Monday, as
CSV (for the spreadsheet) and as a PDF page (for the partners' meeting).

- per payer, the month's denial rate and denied dollars against the prior quarter's (the three
  months before; dollars as a monthly average, so the two compare like for like);
- alerts raised in the month (first seen in it): how many, how many were useful (worked or
  resolved, or marked useful) and how many marked noise;
- dollars recovered after alerts and authorizations renewed before they lapsed (the home
  page's gains, `domain/practice/gains.py`, counted for the month);
- automation actions executed in the month.

Everything comes from the aggregates, the alerts and the authorizations, never by scanning
claims, so it costs the same for a practice of 5 providers or 25.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from upstream.domain.aggregates import DailyCell
from upstream.domain.rejects import neutralize

PRIOR_MONTHS = 3
MONTH = r"20[0-9]{2}-(0[1-9]|1[0-2])"  # YYYY-MM, as a report is asked for


@dataclass(frozen=True, slots=True)
class PayerMonth:
    payer: str
    decided: int
    denied: int
    denied_dollars: float
    prior_rate: float | None  # the prior quarter's denial rate
    prior_monthly_dollars: float

    @property
    def rate(self) -> float | None:
        return self.denied / self.decided if self.decided else None


@dataclass(frozen=True, slots=True)
class MonthlyReport:
    month: str  # YYYY-MM
    payers: list[PayerMonth]
    alerts_raised: int
    alerts_useful: int
    alerts_noise: int
    recovered_dollars: float
    recovered_lines: int
    renewed_in_time: int
    automation_executed: int


def month_bounds(month: str) -> tuple[date, date, date]:
    """(prior quarter's first day, the month's first day, the next month's first day)."""
    year, number = (int(part) for part in month.split("-"))
    first = date(year, number, 1)
    end = date(year + number // 12, number % 12 + 1, 1)
    prior_year, prior_number = (year, number - PRIOR_MONTHS) if number > PRIOR_MONTHS \
        else (year - 1, number - PRIOR_MONTHS + 12)
    return date(prior_year, prior_number, 1), first, end


def previous_month(today: date) -> str:
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return f"{year:04d}-{month:02d}"


def _useful(alert: Mapping[str, Any]) -> bool:
    feedback = [f for f in alert.get("feedback") or [] if isinstance(f, Mapping)]
    if feedback:
        return bool(feedback[-1].get("useful"))
    return str(alert.get("status") or "open") in ("acknowledged", "resolved")


def build(month: str, cells: Iterable[DailyCell], alerts: Sequence[Mapping[str, Any]],
          recovered_cents: int, recovered_lines: int, renewed_in_time: int,
          automation_executed: int) -> MonthlyReport:
    prior_start, first, end = month_bounds(month)
    now_counts: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    before: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for cell in cells:
        target = now_counts if first <= cell.day < end else before \
            if prior_start <= cell.day < first else None
        if target is None:
            continue
        row = target[cell.payer]
        row[0] += float(cell.counters.get("decided", 0) or 0)
        row[1] += float(cell.counters.get("denied", 0) or 0)
        row[2] += float(cell.counters.get("denied_cents", 0) or 0)
    payers = []
    for payer in sorted(set(now_counts) | set(before)):
        current, prior = now_counts.get(payer, [0.0] * 3), before.get(payer, [0.0] * 3)
        payers.append(PayerMonth(payer, int(current[0]), int(current[1]),
                                 round(current[2] / 100, 2),
                                 prior[1] / prior[0] if prior[0] else None,
                                 round(prior[2] / 100 / PRIOR_MONTHS, 2)))
    payers.sort(key=lambda p: (-p.denied_dollars, p.payer))
    raised = [a for a in alerts
              if first.isoformat() <= str(a.get("first_seen") or "")[:10] < end.isoformat()]
    return MonthlyReport(
        month=month, payers=payers, alerts_raised=len(raised),
        alerts_useful=sum(1 for a in raised if _useful(a)),
        alerts_noise=sum(1 for a in raised if a.get("status") == "noise"),
        recovered_dollars=round(recovered_cents / 100, 2), recovered_lines=recovered_lines,
        renewed_in_time=renewed_in_time, automation_executed=automation_executed)


def _rate(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def to_csv(report: MonthlyReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["month", "payer", "decided", "denied", "denial_rate",
                     "prior_quarter_denial_rate", "denied_dollars",
                     "prior_quarter_monthly_denied_dollars"])
    for p in report.payers:
        # Payer names come from exports: neutralised like every CSV we write.
        writer.writerow([report.month, neutralize(p.payer), p.decided, p.denied, _rate(p.rate),
                         _rate(p.prior_rate), f"{p.denied_dollars:.2f}",
                         f"{p.prior_monthly_dollars:.2f}"])
    writer.writerow([])
    for label, value in (("alerts_raised", report.alerts_raised),
                         ("alerts_useful", report.alerts_useful),
                         ("alerts_noise", report.alerts_noise),
                         ("recovered_dollars", f"{report.recovered_dollars:.2f}"),
                         ("recovered_lines", report.recovered_lines),
                         ("authorizations_renewed_in_time", report.renewed_in_time),
                         ("automation_executed", report.automation_executed)):
        writer.writerow([report.month, label, value])
    return out.getvalue()
