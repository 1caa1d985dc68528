"""An alert's evidence to take away: the affected lines as CSV (claim, line, patient key,
codes, dollars; never a name) and a one-page PDF for a payer call (what happened, what is at
stake, the key figures, the trend chart, the denial codes with their meanings, the largest
affected lines, what to do). Both are reads of the practice's data, audited like a page.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from upstream.domain import dashboard as view
from upstream.domain.detect.findings import AFFECTED_FIELDS
from upstream.domain.notify import chart, words
from upstream.domain.notify.render import sections
from upstream.domain.rejects import neutralize
from upstream.services.dashboard_visit import Visit
from upstream.services.web_pages import CSV, PDF, Page, download, message
from upstream.web import render

if TYPE_CHECKING:
    from upstream.services.dashboard import DashboardDeps

PDF_LINES = 15  # what fits one page beside the chart and the codes


def _alert(visit: Visit, deps: DashboardDeps, alert_id: str) -> dict[str, Any] | None:
    return deps.stores.alert(visit.principal.customer_id, alert_id)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return ""
    if key == "billed_cents":
        return f"{int(value) / 100:.2f}"
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


def evidence_csv(visit: Visit, deps: DashboardDeps, alert_id: str) -> Page:
    alert = _alert(visit, deps, alert_id)
    if alert is None:
        return message(404, "Not found", "There is no such alert for your practice.")
    lines = (alert.get("evidence") or {}).get("affected_lines") or []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    columns = [("billed_dollars" if c == "billed_cents" else c) for c in AFFECTED_FIELDS]
    writer.writerow(columns)
    for line in lines:
        writer.writerow([neutralize(_cell(k, line.get(k))) for k in AFFECTED_FIELDS])
    return download(out.getvalue(), CSV, f"alert-{alert_id[:60]}-lines.csv")


def alert_pdf(visit: Visit, deps: DashboardDeps, alert_id: str) -> Page:
    alert = _alert(visit, deps, alert_id)
    if alert is None:
        return message(404, "Not found", "There is no such alert for your practice.")
    if deps.pdf is None:
        return message(503, "Unavailable", "PDF reports are not set up here.")
    png = None
    if alert.get("payer"):
        as_of = visit.now.date()
        window = alert.get("window") if isinstance(alert.get("window"), dict) else {}
        try:
            from datetime import date

            as_of = date.fromisoformat(str((window or {}).get("current_end") or "")[:10]) \
                + timedelta(days=1)
        except ValueError:
            pass
        cells = deps.stores.cells(visit.principal.customer_id,
                                  as_of - timedelta(days=7 * chart.WEEKS), as_of)
        points = chart.weekly_points(cells, str(alert["payer"]), as_of)
        png = chart.render_png(points, view.alert_markers([alert], str(alert["payer"]), points))
    html = render("alert_report.html", nonce="", practice=visit.practice,
                  card=view.alert_card(alert), lead=words.lead(alert),
                  stake=words.stake_sentence(alert), sections=sections(alert)[:4],
                  chart=view.data_uri(png), printed=visit.now.strftime("%Y-%m-%d %H:%M UTC"),
                  actions=[str(a) for a in alert.get("recommended_actions") or []][:6],
                  pdf_lines=PDF_LINES)
    return download(deps.pdf(html), PDF, f"alert-{alert_id[:60]}.pdf")


def _month(visit: Visit) -> str | None:
    import re

    from upstream.domain.notify.monthly import MONTH, previous_month

    asked = visit.request.query.get("month") or previous_month(visit.now.date())
    return asked if re.fullmatch(MONTH, asked) else None


def monthly_csv(visit: Visit, deps: DashboardDeps) -> Page:
    from upstream.domain.notify.monthly import to_csv
    from upstream.services.monthly_report import monthly_report

    month = _month(visit)
    if month is None or deps.monthly is None:
        return message(400 if month is None else 503, "Report",
                       "Ask for a month as YYYY-MM." if month is None
                       else "Monthly reports are not set up here.")
    report = monthly_report(visit.principal.customer_id, month, deps.monthly)
    return download(to_csv(report), CSV, f"upstream-{month}.csv")


def monthly_pdf(visit: Visit, deps: DashboardDeps) -> Page:
    from upstream.services.monthly_report import monthly_report, report_html

    month = _month(visit)
    if month is None or deps.monthly is None or deps.pdf is None:
        return message(400 if month is None else 503, "Report",
                       "Ask for a month as YYYY-MM." if month is None
                       else "Monthly reports are not set up here.")
    report = monthly_report(visit.principal.customer_id, month, deps.monthly)
    return download(deps.pdf(report_html(report, visit.practice)), PDF,
                    f"upstream-{month}.pdf")
