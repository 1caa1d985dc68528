"""PT/OT checks.

- The 8-minute rule (CMS Medicare Claims Processing Manual, ch. 5 §20.2): the units of
  timed codes a patient may be billed on a day follow the day's total timed minutes —
  8–22 minutes one unit, 23–37 two, and so on — not each code's minutes separately.
- The KX threshold (Social Security Act §1833(g), as amended by the Bipartisan Budget Act of
  2018): above the year's threshold of allowed charges (PT and SLP combined; OT separately)
  a Medicare line needs the KX modifier attesting medical necessity, or it is denied. The
  threshold per year is a data file (`data/kx_thresholds.csv`); a tenant may add years.
- Visit limits per payer plan: commercial plans cap visits a year; the practice lists them
  (`visit_limits` in its settings), and visits past the cap are flagged.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date
from functools import cache
from typing import Any

from upstream.domain.detect.findings import Finding, Severity
from upstream.domain.specialty.aba import units_supported
from upstream.domain.specialty.common import finding, line_ref, modifiers, number, table
from upstream.domain.values import as_day as day

TIMED_CODES = frozenset({"97110", "97112", "97113", "97116", "97140", "97530", "97533",
                         "97535", "97537", "97542", "97750", "97760", "97761", "97763",
                         "97032", "97033", "97034", "97035", "97036"})
PT_SLP_MODIFIERS = frozenset({"GP", "GN"})  # one KX threshold for PT and SLP combined
OT_MODIFIERS = frozenset({"GO"})


@cache
def _thresholds() -> dict[int, tuple[int, str]]:
    return {int(r["year"]): (int(r["threshold_cents"]), r["source"])
            for r in table("kx_thresholds.csv")}


def kx_threshold(year: int, overrides: Mapping[str, int] | None = None) -> tuple[int, str]:
    """(cents, source) for the year; a year not yet published uses the latest known."""
    if overrides and str(year) in overrides:
        return int(overrides[str(year)]), "practice setting"
    known = _thresholds()
    if year in known:
        return known[year]
    latest = max(y for y in known if y <= year) if any(y <= year for y in known) else min(known)
    cents, source = known[latest]
    return cents, f"{source} (latest published, used for {year})"


def eight_minute_rule(lines: Sequence[Mapping[str, Any]], run_day: date) -> list[Finding]:
    days: dict[tuple[str, str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for line in lines:
        if str(line.get("cpt")) in TIMED_CODES and line.get("minutes") not in (None, ""):
            days[(str(line.get("payer") or ""), str(line.get("patient_key") or ""),
                  str(line.get("service_date") or ""))].append(line)
    over: dict[str, list[tuple[str, float, int, list[Mapping[str, Any]]]]] = defaultdict(list)
    for (payer, _, service), rows in days.items():
        minutes = sum(number(r.get("minutes")) for r in rows)
        billed = sum(number(r.get("units")) for r in rows)
        if billed > units_supported(minutes):
            over[payer].append((service, billed, units_supported(minutes), rows))
    found = []
    for payer, visits in over.items():
        services = [d for d in (day(v[0]) for v in visits) if d] or [run_day]
        found.append(finding(
            "pt_eight_minute_rule", payer or None, "pt:8-minute", Severity.MEDIUM,
            f"{len(visits)} therapy visits for {payer} bill more timed units than the minutes",
            "CMS's 8-minute rule counts the day's total timed minutes: "
            f"{sum(v[1] - v[2] for v in visits):g} units over in these visits.", "pt_rules",
            min(services), max(services),
            {"visits": len(visits), "excess_units": sum(v[1] - v[2] for v in visits)},
            {"visits": [{"service_date": s, "units_billed": b, "units_supported": a,
                         "lines": [line_ref(r) for r in rows]}
                        for s, b, a, rows in visits[:25]]},
            ["Recount units from the day's total timed minutes before submitting."]))
    return found


def _is_medicare(line: Mapping[str, Any]) -> bool:
    payer, plan = str(line.get("payer") or ""), str(line.get("plan_type") or "")
    return payer.lower().startswith("medicare") and "advantage" not in plan.lower()


def kx_missing(lines: Sequence[Mapping[str, Any]], run_day: date,
               overrides: Mapping[str, int] | None = None) -> list[Finding]:
    """Medicare therapy lines past the year's threshold (per patient, running total of
    allowed — billed where allowed is unknown — in date order) that lack KX."""
    running: dict[tuple[str, int, str], float] = defaultdict(float)
    missing = []
    ordered = sorted((line for line in lines if _is_medicare(line)),
                     key=lambda r: (str(r.get("service_date")), str(r.get("claim_id")),
                                    number(r.get("line"))))
    for line in ordered:
        service = day(line.get("service_date"))
        mods = modifiers(line)
        group = "PT/SLP" if mods & PT_SLP_MODIFIERS else "OT" if mods & OT_MODIFIERS else None
        if service is None or group is None:
            continue
        key = (str(line.get("patient_key") or ""), service.year, group)
        running[key] += number(line.get("allowed_cents") or line.get("billed_cents"))
        threshold, _ = kx_threshold(service.year, overrides)
        if running[key] > threshold and "KX" not in mods:
            missing.append(line)
    if not missing:
        return []
    threshold, source = kx_threshold(run_day.year, overrides)
    services = [d for d in (day(r.get("service_date")) for r in missing) if d]
    return [finding(
        "pt_kx_missing", "Medicare", "pt:kx", Severity.HIGH,
        f"{len(missing)} Medicare therapy lines past the KX threshold without KX",
        f"Above ${threshold / 100:,.2f} of allowed charges in a year ({source}), Medicare "
        "denies therapy lines without the KX modifier.", "pt_rules", min(services),
        max(services), {"lines": len(missing), "threshold_dollars": threshold / 100},
        {"lines": [line_ref(r) for r in missing[:25]], "source": source},
        ["Add KX where the documentation supports continued medical necessity."])]


def visit_limits(lines: Sequence[Mapping[str, Any]], limits: Mapping[str, int],
                 run_day: date) -> list[Finding]:
    visits: dict[tuple[str, str, int], set[str]] = defaultdict(set)
    for line in lines:
        service = day(line.get("service_date"))
        payer = str(line.get("payer") or "")
        if service and payer in limits and str(line.get("cpt")) in TIMED_CODES | {
                "97161", "97162", "97163", "97164", "97165", "97166", "97167", "97168"}:
            visits[(payer, str(line.get("patient_key") or ""), service.year)].add(
                service.isoformat())
    over = [(payer, patient, year, len(days)) for (payer, patient, year), days in visits.items()
            if len(days) > int(limits[payer])]
    found = []
    for payer in sorted({o[0] for o in over}):
        rows = [o for o in over if o[0] == payer]
        found.append(finding(
            "pt_visit_limit", payer, "pt:visits", Severity.MEDIUM,
            f"{len(rows)} patients past {payer}'s {limits[payer]}-visit yearly limit",
            "Visits beyond the plan's limit are denied unless an extension is approved.",
            "pt_rules", run_day, run_day, {"patients": len(rows), "limit": int(limits[payer])},
            {"patients": [{"patient_key": p, "year": y, "visits": n}
                          for _, p, y, n in rows[:25]]},
            ["Request a visit extension, or tell the patient before the next visit."]))
    return found
