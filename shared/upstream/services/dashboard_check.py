"""The pre-submission check in the browser: paste a claim (our JSON, a FHIR Claim, or CSV
rows with their header) and see its score, the factors behind it and the fixes; below, the
queue of pending lines the risk scorer flagged HIGH or MEDIUM. The decisions automation
leaves to people stay on the overview (`#decisions`), one click away.

Checking changes nothing (it is a read, audited like one); the pasted text is neither stored
nor logged, and a pasted patient id is hashed with a key thrown away after the check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from upstream.domain.risk.check import CheckError
from upstream.domain.risk.pasted import MAX_PASTE, lines_from_text
from upstream.services.dashboard_visit import Visit, common
from upstream.services.presubmission import check_claim
from upstream.services.web_pages import Page, page

if TYPE_CHECKING:
    from upstream.services.dashboard import DashboardDeps

QUEUE_SIZE = 50


def _page(visit: Visit, deps: DashboardDeps, status: int = 200,
          result: dict[str, Any] | None = None, error: str | None = None,
          pasted: str = "") -> Page:
    queue = deps.stores.flagged_lines(visit.principal.customer_id, QUEUE_SIZE)
    return page(status, "check.html", **common(visit), queue=queue, max_kb=MAX_PASTE // 1024,
                back="/check", result=result, error=error, pasted=pasted)


def check_page(visit: Visit, deps: DashboardDeps) -> Page:
    return _page(visit, deps)


def run_check(visit: Visit, deps: DashboardDeps) -> Page:
    pasted = visit.form.get("claim", "")
    customer = visit.principal.customer_id
    tenant = deps.stores.tenant(customer) or {}
    try:
        lines = lines_from_text(pasted, tenant.get("payer_aliases"), visit.now)
    except CheckError as exc:
        return _page(visit, deps, 400, error=str(exc), pasted=pasted[:MAX_PASTE])
    result = check_claim(customer, lines, tenant, deps.stores.authorizations,
                         deps.stores.cells, deps.histories, visit.now.date())
    return _page(visit, deps, result=result, pasted=pasted[:MAX_PASTE])
