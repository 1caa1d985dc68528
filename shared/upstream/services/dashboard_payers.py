"""The payer pages: every payer's archetype at a glance, and one payer's page with its
fingerprint, the evidence in words, its top denial reasons explained, and its 13-week denial
rate and payment-lag charts. The report is the weekly run's (`detector_runs._payer_report`);
the charts read 13 weeks of aggregates, as the overview's do."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from upstream.domain import dashboard as view
from upstream.domain.notify import chart
from upstream.services.api_payers import find_payer
from upstream.services.dashboard_visit import Visit, common
from upstream.services.web_pages import Page, message, page

if TYPE_CHECKING:
    from upstream.services.dashboard import DashboardDeps

# Badge colour per archetype (the base stylesheet's classes).
TONE = {"Aggressive Denier": "danger", "Underpayer": "danger", "Slow Payer": "warning",
        "Prompt Payer": "ok", "Typical": ""}


def _report(visit: Visit, deps: DashboardDeps) -> dict[str, Any]:
    return deps.stores.payer_report(visit.principal.customer_id) or {"as_of": None,
                                                                     "payers": []}


def payers_page(visit: Visit, deps: DashboardDeps) -> Page:
    report = _report(visit, deps)
    rows = sorted(report.get("payers") or [], key=lambda e: (
        e.get("archetype") == "Typical", e.get("archetype") == "Prompt Payer",
        str(e.get("payer"))))
    return page(200, "payers.html", **common(visit), as_of=report.get("as_of"), rows=rows,
                tone=TONE, back="/payers")


def payer_page(visit: Visit, deps: DashboardDeps, payer_id: str) -> Page:
    entry = find_payer(_report(visit, deps), payer_id[:200])
    if entry is None:
        return message(404, "Not found", "There is no such payer in your practice's latest "
                                         "payer report.")
    customer, payer = visit.principal.customer_id, str(entry["payer"])
    as_of = view.as_of_day(deps.stores.last_run_day(customer), visit.now.date())
    cells = deps.stores.cells(customer, as_of - timedelta(days=7 * chart.WEEKS), as_of)
    points = chart.weekly_points(cells, payer, as_of)
    alerts = deps.stores.alert_page(customer, {"payer": payer}, 200, None)[0]
    return page(200, "payer.html", **common(visit), entry=entry, tone=TONE,
                denial_chart=view.data_uri(chart.render_png(
                    points, view.alert_markers(alerts, payer, points))),
                lag_chart=view.data_uri(chart.render_lag_png(
                    points, chart.weekly_lag(cells, payer, as_of))),
                alerts=[view.alert_card(a) for a in alerts[:10]],
                back=f"/payers/{entry['payer_id']}")
