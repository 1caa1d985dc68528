"""Imaging: advanced imaging without the prior authorization the payer's radiology benefit
manager requires (eviCore for Cigna and Aetna, Carelon — formerly AIM — for Anthem and
BCBS plans, the payer's own program for UnitedHealthcare). The lookup table is the risk
score's (`domain/risk/data/prior_auth.csv`, sources per row), so one table answers both
"will this claim deny" and "which lines went out without an authorization"."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from upstream.domain.detect.findings import Finding, Severity
from upstream.domain.risk.rules import ANY_PAYER, RulesTable
from upstream.domain.specialty.common import finding, line_ref, number
from upstream.domain.values import as_day as day

HIGH_DOLLARS_CENTS = 500_000  # $5,000 of imaging at risk: a week of a small centre's MRI


def missing_prior_auth(lines: Sequence[Mapping[str, Any]], rules: RulesTable,
                       run_day: date) -> list[Finding]:
    missing: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for line in lines:
        rule = rules.prior_auth_rule(str(line.get("payer") or ""), str(line.get("cpt") or ""))
        if rule is not None and rule.payer != ANY_PAYER and not line.get("authorization_number") \
                and line.get("outcome") in (None, "PENDING"):
            missing[str(line.get("payer"))].append({**line, "program": rule.program})
    found = []
    for payer, rows in sorted(missing.items()):
        dollars = sum(number(r.get("billed_cents")) for r in rows)
        services = [d for d in (day(r.get("service_date")) for r in rows) if d] or [run_day]
        found.append(finding(
            "imaging_prior_auth_missing", payer, "imaging:prior-auth",
            Severity.HIGH if dollars >= HIGH_DOLLARS_CENTS else Severity.MEDIUM,
            f"{len(rows)} imaging lines for {payer} without the required prior authorization",
            f"{rows[0]['program']} requires authorization for these codes; "
            f"${dollars / 100:,.2f} billed is at risk.", "imaging_rules", min(services),
            max(services), {"lines": len(rows), "billed_dollars": dollars / 100},
            {"lines": [line_ref(r) for r in rows[:25]], "program": rows[0]["program"]},
            [f"Obtain or attach the {rows[0]['program']} authorization before submitting.",
             "A retro-authorization is sometimes possible within days of the study."]))
    return found
