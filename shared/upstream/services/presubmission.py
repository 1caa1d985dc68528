"""The pre-submission check of one claim, shared by `POST /v1/risk/score` and the dashboard's
check page: the practice's rules (defaults with its overrides and state), its denial history
(cached per day), the authorizations the claim names, and the model its weekly refit adopted
(logistic or boosted; the rules when none)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

from upstream.domain.aggregates import DailyCell
from upstream.domain.risk.check import check
from upstream.domain.risk.models import model_from_document
from upstream.domain.risk.rules import default_rules, with_overrides
from upstream.services.risk_history import HistoryCache, cached_history


def check_claim(customer: str, lines: Sequence[Mapping[str, Any]], tenant: Mapping[str, Any],
                authorizations: Callable[[str], list[dict[str, Any]]],
                cells: Callable[[str, date, date], list[DailyCell]], histories: HistoryCache,
                today: date) -> dict[str, Any]:
    rules = with_overrides(default_rules(), tenant.get("risk_rules"), tenant.get("state"))
    numbers = {str(n) for n in (line.get("authorization_number") for line in lines) if n}
    auths = [a for a in authorizations(customer)
             if str(a.get("authorization_number")) in numbers] if numbers else []
    return check(lines, cached_history(histories, customer, today, cells), rules, auths,
                 model_from_document(tenant.get("risk_model")))
