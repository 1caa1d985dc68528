"""The authorization calendar (daily): expiries at 30/14/3 days and units running out.

Why both: an ABA authorization lapses on its end date, but a busy case burns its units before
then, and every session after either point is unpaid. The alert says when to file the
re-authorization (the payer's lead time before expiry), how many units are left, and the
revenue at risk.

Status of an authorization on a run day: ACTIVE; EXPIRING_SOON within 30 days of its end;
EXPIRED after it; RENEWED when a later authorization for the same patient, payer and service
covers the days after its end (then it raises nothing).

Claim lines count against an authorization by its number, or, when a line carries none, by
patient + payer + code; either way only for services inside its date range. Denied and void
lines consume nothing.

Re-authorization lead times (`data/reauth_lead_days.csv`) are conservative defaults: longer
for Medicaid plans and TRICARE, whose reviews are slower, 14 days elsewhere; a tenant's own
experience overrides them. Units used are
the larger of what the claims show and what the authorization file reports (the payer portal
may know of sessions not yet billed).
"""

from __future__ import annotations

import csv
import importlib.resources
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from functools import cache
from typing import Any

from upstream.domain.detect.findings import Finding, Severity, Window

EXPIRING = "auth_expiring"
EXHAUSTING = "auth_units_exhausting"
# Days before expiry → severity (seeds: 30/14/3 → MEDIUM/HIGH/CRITICAL).
EXPIRY_STEPS = ((3, Severity.CRITICAL), (14, Severity.HIGH), (30, Severity.MEDIUM))
# Burn rate over the last four weeks: long enough to smooth a holiday week, short enough to
# follow a case whose hours were just increased.
BURN_DAYS = 28
DEFAULT_LEAD_DAYS = 14
CONSUMING = frozenset({"PENDING", "PAID", "PARTIAL"})


class AuthStatus(StrEnum):
    ACTIVE = "ACTIVE"
    EXPIRING_SOON = "EXPIRING_SOON"
    EXPIRED = "EXPIRED"
    RENEWED = "RENEWED"


@cache
def _lead_days() -> dict[str, int]:
    text = importlib.resources.files("upstream.domain.detect").joinpath(
        "data/reauth_lead_days.csv").read_text(encoding="utf-8")
    return {row["payer"]: int(row["lead_days"]) for row in csv.DictReader(text.splitlines())}


def lead_days(payer: str, overrides: Mapping[str, int] | None = None) -> int:
    """Days before expiry a re-authorization should be filed (tenant override, then table)."""
    if overrides and payer in overrides:
        return overrides[payer]
    return _lead_days().get(payer, DEFAULT_LEAD_DAYS)


@dataclass(frozen=True, slots=True)
class Usage:
    units: float
    cents: int
    day: date


def _day(value: Any) -> date | None:
    return date.fromisoformat(str(value)) if value else None


def _key(doc: Mapping[str, Any]) -> tuple[str, str, str]:
    return str(doc.get("patient_key") or ""), str(doc.get("payer")), str(
        doc.get("service_type") or "")


def link_usage(auths: Sequence[Mapping[str, Any]], lines: Iterable[Mapping[str, Any]],
               ) -> dict[str, list[Usage]]:
    """Authorization number → the usage of the claim lines counted against it."""
    by_number = {str(a["authorization_number"]): a for a in auths}
    used: dict[str, list[Usage]] = {number: [] for number in by_number}
    for line in lines:
        if line.get("outcome") not in CONSUMING:
            continue
        day = _day(line.get("service_date"))
        units = float(line.get("units") or 0)
        if day is None or units <= 0:
            continue
        number = line.get("authorization_number")
        target = by_number.get(str(number)) if number else None
        if target is None and not number:
            target = next((a for a in auths
                           if a.get("patient_key") and a.get("patient_key") == line.get(
                               "patient_key") and a.get("payer") == line.get("payer")
                           and (not a.get("cpt_codes") or line.get("cpt") in a["cpt_codes"])
                           and _day(a["start_date"]) <= day <= _day(a["end_date"])), None)  # type: ignore[operator]
        if target is not None and _day(target["start_date"]) <= day <= _day(  # type: ignore[operator]
                target["end_date"]):
            used[str(target["authorization_number"])].append(
                Usage(units, int(line.get("billed_cents") or 0), day))
    return used


def status(auth: Mapping[str, Any], auths: Sequence[Mapping[str, Any]],
           run_day: date) -> AuthStatus:
    end = _day(auth["end_date"])
    assert end is not None
    renewed = any(_key(other) == _key(auth) and other is not auth
                  and (_day(other["end_date"]) or end) > end
                  and (_day(other["start_date"]) or end) <= end + timedelta(days=1)
                  for other in auths)
    if renewed:
        return AuthStatus.RENEWED
    if end < run_day:
        return AuthStatus.EXPIRED
    return AuthStatus.EXPIRING_SOON if (end - run_day).days <= 30 else AuthStatus.ACTIVE


def calendar(auths: Sequence[Mapping[str, Any]], lines: Iterable[Mapping[str, Any]],
             run_day: date, lead_overrides: Mapping[str, int] | None = None) -> list[Finding]:
    usage = link_usage(auths, lines)
    found: list[Finding] = []
    for auth in auths:
        state = status(auth, auths, run_day)
        start, end = _day(auth["start_date"]), _day(auth["end_date"])
        if state in (AuthStatus.RENEWED, AuthStatus.EXPIRED) or start is None or end is None:
            continue
        if start > run_day:
            continue  # not started yet
        uses = [u for u in usage[str(auth["authorization_number"])] if u.day < run_day]
        claimed = sum(u.units for u in uses)
        used = max(claimed, float(auth.get("units_used") or 0))
        authorized = float(auth.get("units_authorized") or 0)
        recent = [u for u in uses if u.day >= run_day - timedelta(days=BURN_DAYS)]
        burn = sum(u.units for u in recent) / BURN_DAYS
        cents_per_unit = (sum(u.cents for u in uses) / claimed) if claimed else 0.0
        facts = _facts(auth, state, used, claimed, authorized, burn, cents_per_unit, run_day,
                       lead_days(str(auth["payer"]), lead_overrides))
        days_left = (end - run_day).days
        severity = next((s for limit, s in EXPIRY_STEPS if days_left <= limit), None)
        if severity is not None:
            found.append(_expiring(auth, severity, facts, run_day))
        if authorized > 0 and burn > 0:
            remaining = authorized - used
            runs_out = run_day + timedelta(days=max(0.0, remaining) / burn)
            if runs_out < end:
                found.append(_exhausting(auth, remaining, runs_out, facts, run_day))
    return found


def _facts(auth: Mapping[str, Any], state: AuthStatus, used: float, claimed: float,
           authorized: float, burn: float, cents_per_unit: float, run_day: date,
           lead: int) -> dict[str, Any]:
    end = _day(auth["end_date"])
    assert end is not None
    return {"authorization_number": auth["authorization_number"], "payer": auth["payer"],
            "patient_key": auth.get("patient_key"), "service_type": auth.get("service_type"),
            "status": state.value, "start_date": str(auth["start_date"]),
            "end_date": end.isoformat(), "days_left": (end - run_day).days,
            "units_authorized": authorized, "units_used": round(used, 2),
            "units_used_on_claims": round(claimed, 2), "units_per_day": round(burn, 2),
            "reauth_lead_days": lead,
            "reauth_deadline": (end - timedelta(days=lead)).isoformat(),
            "dollars_per_unit": round(cents_per_unit / 100, 2)}


def _window(auth: Mapping[str, Any], run_day: date) -> Window:
    start = _day(auth["start_date"]) or run_day
    return Window(current_start=start, current_end=_day(auth["end_date"]) or run_day)


def _expiring(auth: Mapping[str, Any], severity: Severity, facts: dict[str, Any],
              run_day: date) -> Finding:
    # Revenue at risk: the next 30 days of sessions at the current pace, unpaid if the
    # authorization lapses.
    at_risk = facts["units_per_day"] * 30 * facts["dollars_per_unit"]
    overdue = facts["reauth_deadline"] < run_day.isoformat()
    return Finding(
        type=EXPIRING, payer=str(auth["payer"]), scope=f"auth:{auth['authorization_number']}",
        severity=severity, method="authorization_calendar",
        title=f"Authorization {auth['authorization_number']} ({auth['payer']}) ends in "
              f"{facts['days_left']} days",
        summary=(f"Ends {facts['end_date']}; {facts['units_used']:.0f} of "
                 f"{facts['units_authorized']:.0f} units used. File the re-authorization by "
                 f"{facts['reauth_deadline']}" + (" (already past the payer's lead time)."
                                                   if overdue else ".")),
        metrics={**facts, "revenue_at_risk_dollars": round(at_risk, 2)},
        evidence={"authorization": facts},
        recommended_actions=[
            "Submit the re-authorization request with the updated treatment plan"
            + (" today." if overdue else f" before {facts['reauth_deadline']}."),
            "Confirm the sessions scheduled after the end date are covered or moved."],
        window=_window(auth, run_day))


def _exhausting(auth: Mapping[str, Any], remaining: float, runs_out: date,
                facts: dict[str, Any], run_day: date) -> Finding:
    end = _day(auth["end_date"]) or run_day
    unpaid_days = (end - runs_out).days
    at_risk = facts["units_per_day"] * unpaid_days * facts["dollars_per_unit"]
    severity = (Severity.CRITICAL if remaining <= 0 else
                Severity.HIGH if (runs_out - run_day).days <= 14 else Severity.MEDIUM)
    return Finding(
        type=EXHAUSTING, payer=str(auth["payer"]), scope=f"auth:{auth['authorization_number']}",
        severity=severity, method="authorization_units",
        title=f"Authorization {auth['authorization_number']} runs out of units on {runs_out}",
        summary=(f"{max(0.0, remaining):.0f} units left at {facts['units_per_day']:.1f} a day: "
                 f"they run out {unpaid_days} days before the authorization ends on {end}."),
        metrics={**facts, "units_remaining": round(remaining, 2),
                 "projected_exhaustion": runs_out.isoformat(),
                 "revenue_at_risk_dollars": round(at_risk, 2)},
        evidence={"authorization": facts},
        recommended_actions=["Request additional units from the payer now.",
                             "Review the schedule against the units left."],
        window=_window(auth, run_day))
