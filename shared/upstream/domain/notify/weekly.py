"""The weekly summary e-mail (the revenue-cycle director's 20-minute weekly review): what
Upstream raised and what became of it, denied dollars by payer against the four weeks before,
and the authorizations that end in the next 30 days.

Pure: it takes the week's alerts, the aggregate cells of the last five weeks and the
authorizations, and returns the figures and the message.
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from email.message import EmailMessage
from typing import Any

from upstream.domain.aggregates import DailyCell

PRIOR_WEEKS = 4
EXPIRING_DAYS = 30


@dataclass(frozen=True, slots=True)
class PayerDollars:
    payer: str
    denied_dollars: float
    prior_weekly_dollars: float  # the average week of the 4 before

    @property
    def change(self) -> float | None:
        if self.prior_weekly_dollars <= 0:
            return None
        return self.denied_dollars / self.prior_weekly_dollars - 1


@dataclass(frozen=True, slots=True)
class WeeklySummary:
    week_start: date
    week_end: date  # exclusive
    raised: int
    by_status: dict[str, int]
    by_type: dict[str, int]
    payers: list[PayerDollars]
    expiring: list[dict[str, Any]]


def summarize(alerts: Iterable[Mapping[str, Any]], cells: Iterable[DailyCell],
              authorizations: Iterable[Mapping[str, Any]], week_end: date) -> WeeklySummary:
    start = week_end - timedelta(days=7)
    prior_start = start - timedelta(days=7 * PRIOR_WEEKS)
    week = [a for a in alerts if start.isoformat() <= str(a.get("created_at", ""))[:10]
            < week_end.isoformat()]
    current: defaultdict[str, float] = defaultdict(float)
    prior: defaultdict[str, float] = defaultdict(float)
    for cell in cells:
        cents = float(cell.counters.get("denied_cents", 0) or 0)
        if start <= cell.day < week_end:
            current[cell.payer] += cents
        elif prior_start <= cell.day < start:
            prior[cell.payer] += cents
    payers = sorted((PayerDollars(p, round(current[p] / 100, 2),
                                  round(prior[p] / 100 / PRIOR_WEEKS, 2))
                     for p in set(current) | set(prior)),
                    key=lambda p: (-p.denied_dollars, p.payer))
    horizon = (week_end + timedelta(days=EXPIRING_DAYS)).isoformat()
    expiring = sorted(
        (dict(a) for a in authorizations
         if week_end.isoformat() <= str(a.get("end_date", "")) <= horizon
         and a.get("status") != "RENEWED"),
        key=lambda a: (str(a.get("end_date")), str(a.get("authorization_number"))))
    return WeeklySummary(
        week_start=start, week_end=week_end, raised=len(week),
        by_status=dict(Counter(str(a.get("status", "open")) for a in week)),
        by_type=dict(Counter(str(a.get("type")) for a in week)),
        payers=payers, expiring=expiring)


def _change(p: PayerDollars) -> str:
    return "new" if p.change is None else f"{p.change:+.0%}"


def _rows(summary: WeeklySummary) -> dict[str, tuple[list[str], list[list[str]]]]:
    return {
        "Alerts this week": (["status", "alerts"], [
            [k, str(v)] for k, v in sorted(summary.by_status.items())] or [["none", "0"]]),
        "Denied dollars by payer (this week vs the average of the 4 before)": (
            ["payer", "this week", "weekly before", "change"],
            [[p.payer, f"${p.denied_dollars:,.2f}", f"${p.prior_weekly_dollars:,.2f}",
              _change(p)] for p in summary.payers]),
        f"Authorizations ending in the next {EXPIRING_DAYS} days": (
            ["authorization", "payer", "ends", "units used / authorized"],
            [[str(a.get("authorization_number")), str(a.get("payer")), str(a.get("end_date")),
              f"{a.get('units_used') or 0:g} / {a.get('units_authorized') or 0:g}"]
             for a in summary.expiring]),
    }


def weekly_email(summary: WeeklySummary, sender: str, recipients: list[str], practice: str,
                 dashboard_url: str) -> EmailMessage:
    last_day = summary.week_end - timedelta(days=1)
    sections = _rows(summary)
    noise = summary.by_status.get("noise", 0)
    acknowledged = summary.by_status.get("acknowledged", 0)
    headline = (f"{summary.raised} alerts raised, {acknowledged} acknowledged, {noise} marked "
                f"noise, {len(summary.expiring)} authorizations ending within "
                f"{EXPIRING_DAYS} days.")
    text = [headline]
    body = [f"<h2>Week of {summary.week_start} to {last_day}</h2>",
            f"<p>{html.escape(headline)}</p>"]
    for heading, (columns, rows) in sections.items():
        text.append(heading + "\n" + "\n".join(
            "  " + " | ".join(r) for r in [columns, *rows]))
        body.append(f"<h3>{html.escape(heading)}</h3><table border='1' cellpadding='4' "
                    "cellspacing='0'><tr>" + "".join(
                        f"<th align='left'>{html.escape(c)}</th>" for c in columns) + "</tr>"
                    + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row)
                              + "</tr>" for row in rows) + "</table>")
    text.append(f"Dashboard: {dashboard_url}")
    body.append(f"<p><a href='{html.escape(dashboard_url, quote=True)}'>Open Upstream</a></p>")
    message = EmailMessage()
    message["Subject"] = " ".join(f"[Upstream] Weekly summary {summary.week_start} to "
                                  f"{last_day} for {practice}".split())[:200]
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message.set_content("\n\n".join(text))
    message.add_alternative("<html><body>" + "".join(body) + "</body></html>", subtype="html")
    return message
