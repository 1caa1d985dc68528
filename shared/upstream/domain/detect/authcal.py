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

from upstream.domain.detect.findings import SEVERITY_ORDER as SEVERITY_RANK
from upstream.domain.detect.findings import Finding, Severity, Window

EXPIRING = "auth_expiring"
EXHAUSTING = "auth_units_exhausting"
OVERUSED = "auth_units_exceeded"
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
    """At most one finding per authorization: its worst problem leads, the others are listed
    with it (one thing to do per authorization, not one alert per symptom). A request the
    payer denied or has not answered is not an authorization: it has no calendar."""
    auths = [a for a in auths if a.get("decision") not in ("denied", "pending")]
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
        problems = [p for p in (_over_used(auth, facts, uses, run_day),
                                _exhausting(auth, facts, run_day),
                                _expiring(auth, facts, run_day)) if p is not None]
        if problems:
            found.append(_one_alert(auth, problems, run_day))
    return found


@dataclass(frozen=True, slots=True)
class _Problem:
    kind: str
    severity: Severity
    headline: str  # one sentence, what happened
    action: str
    at_risk_dollars: float
    metrics: dict[str, Any]


def _one_alert(auth: Mapping[str, Any], problems: list[_Problem], run_day: date) -> Finding:
    ranked = sorted(problems, key=lambda p: SEVERITY_RANK[p.severity], reverse=True)
    lead = ranked[0]
    facts = dict(ranked[0].metrics["authorization"])
    metrics: dict[str, Any] = {k: v for p in reversed(ranked) for k, v in p.metrics.items()
                               if k != "authorization"}
    metrics.update(facts)
    metrics["problems"] = [p.kind for p in ranked]
    metrics["revenue_at_risk_dollars"] = round(max(p.at_risk_dollars for p in ranked), 2)
    return Finding(
        type=lead.kind, payer=str(auth["payer"]), scope=f"auth:{auth['authorization_number']}",
        severity=lead.severity, method="authorization_calendar",
        title=f"Authorization {auth['authorization_number']} ({auth['payer']}): "
              f"{lead.headline}",
        summary=" ".join([*(p.headline[0].upper() + p.headline[1:] + "." for p in ranked),
                          _units_line(facts)]).strip(),
        metrics=metrics, evidence={"authorization": facts},
        recommended_actions=[*dict.fromkeys(p.action for p in ranked),
                             "Confirm the sessions scheduled from now on are covered or moved."],
        window=_window(auth, run_day))


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


def _over_used(auth: Mapping[str, Any], facts: dict[str, Any], uses: Sequence[Usage],
               run_day: date) -> _Problem | None:
    """Units rendered beyond the authorization: the payer denies every one of them, so this
    is CRITICAL from the first unit over, whatever the dates say."""
    authorized, used = facts["units_authorized"], facts["units_used"]
    if authorized <= 0 or used <= authorized:
        return None
    over = used - authorized
    first_over = _first_day_over(uses, authorized)
    return _Problem(
        kind=OVERUSED, severity=Severity.CRITICAL,
        headline=(f"{over:.0f} units rendered beyond the {authorized:.0f} authorized "
                  f"({used:.0f} used)" + (f", the first on {first_over}" if first_over else "")),
        action="Ask the payer for a retroactive increase of units, and hold the claims for the "
               "units over until it answers.",
        at_risk_dollars=over * facts["dollars_per_unit"],
        metrics={"authorization": facts, "units_over": round(over, 2),
                 "first_day_over": first_over.isoformat() if first_over else None})


def _units_line(facts: dict[str, Any]) -> str:
    if facts["units_authorized"] <= 0:
        return ""
    return (f"{facts['units_used']:.0f} of {facts['units_authorized']:.0f} units used"
            f" ({facts['units_per_day']:.1f} a day over the last {BURN_DAYS} days).")


def _first_day_over(uses: Sequence[Usage], authorized: float) -> date | None:
    total = 0.0
    for use in sorted(uses, key=lambda u: u.day):
        total += use.units
        if total > authorized:
            return use.day
    return None  # the payer's count (units_used in the file) is over, not our claims


def _exhausting(auth: Mapping[str, Any], facts: dict[str, Any],
                run_day: date) -> _Problem | None:
    authorized, used, burn = facts["units_authorized"], facts["units_used"], facts[
        "units_per_day"]
    end = date.fromisoformat(facts["end_date"])
    if authorized <= 0 or used > authorized:
        return None  # none authorized is not ours to judge; over is its own problem
    remaining = authorized - used
    if remaining <= 0:
        return _Problem(
            kind=EXHAUSTING, severity=Severity.CRITICAL,
            headline=f"all {authorized:.0f} units are used and it runs until {end}",
            action="Request additional units from the payer now: sessions from today are "
                   "unpaid until they are approved.",
            at_risk_dollars=burn * (end - run_day).days * facts["dollars_per_unit"],
            metrics={"authorization": facts, "units_remaining": 0.0,
                     "projected_exhaustion": run_day.isoformat()})
    if burn <= 0:
        return None
    runs_out = run_day + timedelta(days=remaining / burn)
    if runs_out >= end:
        return None
    unpaid_days = (end - runs_out).days
    severity = Severity.HIGH if (runs_out - run_day).days <= 14 else Severity.MEDIUM
    return _Problem(
        kind=EXHAUSTING, severity=severity,
        headline=(f"at {burn:.1f} units a day its {remaining:.0f} remaining units will run "
                  f"out around {runs_out}, {unpaid_days} days before it ends on {end}"),
        action="Request additional units from the payer now, and review the schedule "
               "against the units left.",
        at_risk_dollars=burn * unpaid_days * facts["dollars_per_unit"],
        metrics={"authorization": facts, "units_remaining": round(remaining, 2),
                 "projected_exhaustion": runs_out.isoformat()})


def _expiring(auth: Mapping[str, Any], facts: dict[str, Any],
              run_day: date) -> _Problem | None:
    days_left = facts["days_left"]
    severity = next((s for limit, s in EXPIRY_STEPS if days_left <= limit), None)
    if severity is None:
        return None
    overdue = facts["reauth_deadline"] < run_day.isoformat()
    when = "today" if days_left == 0 else ("tomorrow" if days_left == 1
                                           else f"in {days_left} days")
    return _Problem(
        kind=EXPIRING, severity=severity,
        headline=f"it ends {when}, on {facts['end_date']}" + (
            f"; the payer's {facts['reauth_lead_days']}-day lead time to re-authorize is "
            "already past" if overdue else
            f"; file the re-authorization by {facts['reauth_deadline']}"),
        action=("Submit the re-authorization request with the updated treatment plan "
                + ("today: the payer's lead time has passed." if overdue
                   else f"before {facts['reauth_deadline']}.")),
        # The next 30 days of sessions at the current pace, unpaid if it lapses.
        at_risk_dollars=facts["units_per_day"] * 30 * facts["dollars_per_unit"],
        metrics={"authorization": facts})
