"""The automation use-case: a proposed action is classified (tiers.py), recorded once, and
then executed (Tier 1), queued for a biller (Tier 2) or escalated (Tier 3, an alert); every
decision, execution, approval and override goes to the append-only execution log with who,
what, why, and the before/after.

"Proposed twice, executed once": the action id is a hash of what it does and to what, and
`begin` creates its record only once. A human override of a hold needs a written
justification, which the log keeps.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from upstream.domain.automation.actions import ActionError, execute
from upstream.domain.automation.tiers import (
    ActionType,
    AutomationSettings,
    ProposedAction,
    Tier,
    classify,
)
from upstream.domain.detect.findings import Alert, Severity, Window
from upstream.logs import get_logger
from upstream.ports import AlertStore, AutomationStore, Publisher, TenantReader
from upstream.services.alert_publishing import save_and_publish

log = get_logger(__name__)
MIN_JUSTIFICATION = 20  # a sentence, not "ok"
SYSTEM = "upstream"
ESCALATION = "automation_escalation"


@dataclass(frozen=True, slots=True)
class AutomationDeps:
    tenants: TenantReader
    store: AutomationStore
    alerts: AlertStore
    publisher: Publisher
    alerts_topic: str
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


class AutomationRefused(ValueError):
    pass


def settings_for(tenant: dict[str, Any] | None) -> AutomationSettings:
    """The tenant's settings; stored settings that no longer validate fall back to the safe
    default (automation off) and say so."""
    try:
        return AutomationSettings.model_validate((tenant or {}).get("automation") or {})
    except ValidationError as exc:
        log.error("stored automation settings invalid: automation off",
                  extra={"error": exc.errors()[0]["msg"]})
        return AutomationSettings()


def _entry(action_id: str, event: str, by: str, why: list[str] | str, now: datetime,
           **extra: Any) -> dict[str, Any]:
    return {"entry_id": uuid.uuid4().hex, "action_id": action_id, "event": event, "by": by,
            "why": why, "at": now, **extra}


def propose(action: ProposedAction, deps: AutomationDeps) -> dict[str, Any]:
    customer, now = action.customer_id, deps.clock()
    settings = settings_for(deps.tenants.get(customer))
    tier, reasons = classify(action, settings)
    document = {**action.model_dump(mode="json"), "action_id": action.action_id,
                "tier": int(tier), "tier_reasons": reasons, "status": "proposed",
                "proposed_at": now}
    if not deps.store.begin(customer, action.action_id, document):
        return {"action_id": action.action_id, "status": "duplicate"}
    deps.store.append_log(customer, _entry(action.action_id, "classified", SYSTEM, reasons,
                                           now, tier=int(tier), what=action.action_type.value,
                                           target=action.target))
    if tier is Tier.AUTO_EXECUTE:
        return _execute(action, deps, SYSTEM, now)
    if tier is Tier.REVIEW:
        deps.store.update(customer, action.action_id, {"status": "queued_for_review"})
        return {"action_id": action.action_id, "status": "queued_for_review", "tier": 2}
    deps.store.update(customer, action.action_id, {"status": "escalated"})
    _escalate(action, reasons, settings, deps, now)
    return {"action_id": action.action_id, "status": "escalated", "tier": 3}


def _execute(action: ProposedAction, deps: AutomationDeps, by: str,
             now: datetime) -> dict[str, Any]:
    customer = action.customer_id
    try:
        before, after = execute(action, action.details.get("current") or {}, now.date())
    except ActionError as exc:
        deps.store.update(customer, action.action_id, {"status": "failed", "error": str(exc)})
        deps.store.append_log(customer, _entry(action.action_id, "failed", by, str(exc), now))
        return {"action_id": action.action_id, "status": "failed", "error": str(exc)}
    deps.store.update(customer, action.action_id, {"status": "executed", "executed_at": now,
                                                   "before": before, "after": after})
    deps.store.append_log(customer, _entry(action.action_id, "executed", by,
                                           action.reason or action.action_type.value, now,
                                           before=before, after=after))
    return {"action_id": action.action_id, "status": "executed", "after": after}


def _escalate(action: ProposedAction, reasons: list[str], settings: AutomationSettings,
              deps: AutomationDeps, now: datetime) -> None:
    today = now.date()
    alert = Alert(
        alert_id=f"esc-{action.action_id}", customer_id=action.customer_id, type=ESCALATION,
        severity=Severity.HIGH, payer=action.details.get("payer"),
        scope=f"action:{action.action_id}",
        title=f"Needs a decision: {action.action_type.value.replace('_', ' ')} on "
              f"{action.target}",
        summary="Upstream will not do this automatically: " + "; ".join(reasons) + ".",
        metrics={"confidence": action.confidence,
                 "dollars": round(action.dollars_cents / 100, 2)},
        evidence={"action": action.model_dump(mode="json"),
                  "escalate_to": list(settings.escalation_contacts)},
        recommended_actions=["Decide and record the decision in Upstream."],
        window=Window(current_start=today, current_end=today), created_at=today,
        first_seen=today, last_seen=today, methods=["automation"])
    save_and_publish(action.customer_id, [alert], set(), deps.alerts, deps.publisher,
                     deps.alerts_topic)


def approve(customer: str, action_id: str, by: str, note: str | None,
            deps: AutomationDeps) -> dict[str, Any]:
    """A biller approves a queued (Tier 2) action: it executes now, logged under their name.
    Escalated (Tier 3) actions are never executed by Upstream, approved or not."""
    found = deps.store.get(customer, action_id)
    if found is None:
        raise KeyError(action_id)
    if found.get("status") != "queued_for_review":
        raise AutomationRefused(f"only actions queued for review can be approved; this one is "
                                f"{found.get('status')}")
    action = ProposedAction.model_validate({k: found[k] for k in ProposedAction.model_fields
                                            if k in found})
    now = deps.clock()
    deps.store.append_log(customer, _entry(action_id, "approved", by, note or "approved", now))
    return _execute(action, deps, by, now)


def override_hold(customer: str, action_id: str, by: str, justification: str,
                  deps: AutomationDeps) -> dict[str, Any]:
    """Releases an executed hold. The justification is required and logged."""
    text = " ".join((justification or "").split())
    if len(text) < MIN_JUSTIFICATION:
        raise AutomationRefused(f"a justification of at least {MIN_JUSTIFICATION} characters "
                                "is required to release a hold")
    found = deps.store.get(customer, action_id)
    if found is None:
        raise KeyError(action_id)
    if found.get("action_type") != ActionType.HOLD_CLAIM or found.get("status") != "executed":
        raise AutomationRefused("only an executed hold can be overridden")
    now = deps.clock()
    before, after = {"hold": True}, {"hold": False}
    deps.store.update(customer, action_id, {"status": "overridden", "after": after,
                                            "overridden_by": by, "justification": text})
    deps.store.append_log(customer, _entry(action_id, "override", by, text, now,
                                           before=before, after=after))
    return {"action_id": action_id, "status": "overridden"}
