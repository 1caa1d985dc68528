"""`GET /v1/payers` and `/v1/payers/{payer}`: the weekly payer report (fingerprint, archetype,
evidence) as the detector run stored it. The report is computed weekly from a year of
aggregates; an API call reads one document, never the aggregates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from upstream.services.api_requests import _Strict
from upstream.services.webhooks import Answer, problem

if TYPE_CHECKING:
    from upstream.services.api import ApiDeps, Call


class PayerQuery(_Strict):
    archetype: Literal["Aggressive Denier", "Slow Payer", "Prompt Payer", "Underpayer",
                       "Typical"] | None = None


class PayerPath(_Strict):
    payer: str = Field(min_length=1, max_length=200)


def report_of(deps: ApiDeps, customer: str) -> dict[str, Any]:
    return deps.stores.payer_report(customer) or {"as_of": None, "payers": []}


def find_payer(report: dict[str, Any], payer: str) -> dict[str, Any] | None:
    """The entry for a payer id (names may hold '/'), a name as given, or a name matched
    without regard to case."""
    entries = report.get("payers") or []
    exact = [e for e in entries if payer in (e.get("payer"), e.get("payer_id"))]
    loose = [e for e in entries if str(e.get("payer", "")).casefold() == payer.casefold()]
    found = exact or loose
    return found[0] if found else None


def list_payers(call: Call, deps: ApiDeps) -> Answer:
    from upstream.services.api import _model

    query = _model(PayerQuery, call.query)
    report = report_of(deps, call.customer)
    payers = [e for e in report.get("payers") or []
              if query.archetype is None or e.get("archetype") == query.archetype]
    return Answer(200, {"as_of": report.get("as_of"), "payers": payers})


def get_payer(call: Call, deps: ApiDeps, payer: str) -> Answer:
    from upstream.services.api import _model

    _model(PayerPath, {"payer": payer})
    found = find_payer(report_of(deps, call.customer), payer)
    if found is None:
        return problem(404, "not-found", "No such payer in this practice's latest payer report")
    return Answer(200, found)
