"""Dialysis: Medicare Advantage payment variance against the Traditional Medicare baseline.

MA plans pay dialysis under contract, often benchmarked to Traditional Medicare's ESRD PPS
(42 CFR 413 subpart H). A plan paying well under that baseline per treatment is worth a
contract conversation; below −15% (the issue's threshold, a margin wider than the PPS's
case-mix and wage-index adjustments typically move a facility's rate) it is an alert.
The baseline per year is a data file (`data/esrd_base_rates.csv`: CMS's published base
rate); a facility's own adjusted rate can replace it in the practice's settings.

TDAPA/TPNIES add-ons (42 CFR 413.234, 413.236) are not checked: the add-on's signal is on
the facility's drug and equipment lines (revenue-code level), which claim lines do not carry.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date
from functools import cache
from typing import Any

from upstream.domain.detect.findings import Finding, Severity
from upstream.domain.specialty.common import finding, number, table
from upstream.domain.values import as_day as day

DIALYSIS_CODES = frozenset({"90935", "90937", "90945", "90947", "90999"})
UNDERPAYMENT = -0.15
MIN_TREATMENTS = 10  # the seeds' minimum sample for a rate, applied to paid treatments


@cache
def _rates() -> dict[int, tuple[int, str]]:
    return {int(r["year"]): (int(r["base_rate_cents"]), r["source"])
            for r in table("esrd_base_rates.csv")}


def baseline(year: int, override_cents: int | None = None) -> tuple[int, str]:
    if override_cents:
        return override_cents, "practice setting"
    known = _rates()
    usable = [y for y in known if y <= year] or [min(known)]
    cents, source = known[max(usable)]
    return cents, source if max(usable) == year else f"{source} (used for {year})"


def _is_ma(line: Mapping[str, Any]) -> bool:
    text = f"{line.get('plan_type') or ''} {line.get('payer') or ''}".lower()
    return "advantage" in text or str(line.get("plan_type") or "").upper() in ("MA", "MAPD")


def ma_underpayment(lines: Sequence[Mapping[str, Any]], run_day: date,
                    override_cents: int | None = None) -> list[Finding]:
    paid: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for line in lines:
        if str(line.get("cpt")) in DIALYSIS_CODES and _is_ma(line) \
                and line.get("outcome") in ("PAID", "PARTIAL"):
            paid[str(line.get("payer"))].append(line)
    found = []
    for payer, rows in sorted(paid.items()):
        if len(rows) < MIN_TREATMENTS:
            continue
        services = [d for d in (day(r.get("service_date")) for r in rows) if d] or [run_day]
        base, source = baseline(max(services).year, override_cents)
        mean = sum(number(r.get("paid_cents")) for r in rows) / len(rows)
        variance = mean / base - 1
        if variance >= UNDERPAYMENT:
            continue
        short = (base - mean) * len(rows)
        found.append(finding(
            "dialysis_ma_underpayment", payer, "dialysis:ma", Severity.HIGH,
            f"{payer} pays dialysis {abs(variance):.0%} under Traditional Medicare",
            f"{len(rows)} treatments paid ${mean / 100:,.2f} on average vs the "
            f"${base / 100:,.2f} baseline: ${short / 100:,.2f} short.", "dialysis_rules",
            min(services), max(services),
            {"treatments": len(rows), "mean_paid_dollars": round(mean / 100, 2),
             "baseline_dollars": base / 100, "variance": round(variance, 4),
             "shortfall_dollars": round(short / 100, 2)},
            {"baseline_source": source},
            ["Compare the plan's contract rate to the ESRD PPS baseline; open a rate review.",
             "Check the remittances for underpaid treatments to appeal."]))
    return found
