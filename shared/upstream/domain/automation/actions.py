"""What each implemented action does, as data: the before and after the execution log keeps.

Upstream does not write into the practice's billing system: an executed action is a
correction record (modifier to add, claim to hold, re-authorization request to file) that
the biller's work queue, the API and the dashboard read. That keeps every change visible and
reversible, and the practice's system of record in the practice's hands.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from upstream.domain.automation.tiers import ActionType, ProposedAction

MAX_MODIFIERS = 4  # CMS-1500 box 24D holds four modifiers per line
# A re-authorization asks for the next period at the current pace plus this margin: sessions
# missed to illness get made up, and a request that runs out early repeats this whole cycle.
REAUTH_MARGIN = 0.10
DEFAULT_PERIOD_DAYS = 180  # ABA authorizations are most often six months


class ActionError(ValueError):
    pass


def add_modifier(line_modifiers: list[str], modifier: str) -> tuple[dict[str, Any],
                                                                     dict[str, Any]]:
    before = list(line_modifiers)
    if modifier in before:
        return {"modifiers": before}, {"modifiers": before}
    if len(before) >= MAX_MODIFIERS:
        raise ActionError(f"the line already has {MAX_MODIFIERS} modifiers")
    return {"modifiers": before}, {"modifiers": [*before, modifier]}


def reauth_request(facts: Mapping[str, Any], today: date) -> dict[str, Any]:
    """The request a biller files, with its utilization report (the seeds' calendar facts)."""
    start, end = str(facts.get("start_date", "")), str(facts.get("end_date", ""))
    try:
        period = (date.fromisoformat(end) - date.fromisoformat(start)).days or \
            DEFAULT_PERIOD_DAYS
    except ValueError:
        period = DEFAULT_PERIOD_DAYS
    per_day = float(facts.get("units_per_day") or 0)
    authorized = float(facts.get("units_authorized") or 0)
    used = float(facts.get("units_used") or 0)
    requested = round(per_day * period * (1 + REAUTH_MARGIN)) or round(authorized)
    try:
        next_start = (date.fromisoformat(end) + timedelta(days=1)).isoformat()
    except ValueError:
        next_start = today.isoformat()
    return {
        "authorization_number": facts.get("authorization_number"),
        "payer": facts.get("payer"), "patient_key": facts.get("patient_key"),
        "service_type": facts.get("service_type"),
        "file_by": facts.get("reauth_deadline"),
        "requested_period": {"start": next_start, "days": period},
        "requested_units": requested,
        "utilization_report": {
            "period": {"start": start, "end": end}, "units_authorized": authorized,
            "units_used": used,
            "utilization": round(used / authorized, 3) if authorized else None,
            "units_per_day_last_28_days": per_day,
            "dollars_per_unit": facts.get("dollars_per_unit")},
        "prepared_on": today.isoformat()}


def execute(action: ProposedAction, current: Mapping[str, Any],
            today: date) -> tuple[dict[str, Any], dict[str, Any]]:
    """(before, after) of an action on the state it acts on (`current`)."""
    if action.action_type is ActionType.ADD_MODIFIER:
        return add_modifier([str(m) for m in current.get("modifiers") or []],
                            str(action.details.get("modifier", "")).upper())
    if action.action_type is ActionType.HOLD_CLAIM:
        return {"hold": bool(current.get("hold"))}, {"hold": True}
    if action.action_type is ActionType.REAUTH_REQUEST:
        return {"request": None}, {"request": reauth_request(action.details, today)}
    raise ActionError(f"{action.action_type.value} has no automatic implementation")
