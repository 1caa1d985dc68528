"""Automation tiers (pure, with a property test that the prohibited list never auto-executes
whatever the settings), the actions' before/after, and the use-case with an in-memory store
for its callers' sake. The store itself, append-only on the emulator:
tests/integration/test_risk_on_emulators.py."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.fakes import FakePublisher
from tests.unit.test_detector_runs import Alerts
from tests.unit.test_score_claims import Tenants
from upstream.domain.automation.actions import ActionError, add_modifier, reauth_request
from upstream.domain.automation.tiers import (
    PROHIBITED_TYPES,
    ActionType,
    AutomationSettings,
    ComplianceFlag,
    ProposedAction,
    Tier,
    classify,
    prohibited,
)
from upstream.services.automation import (
    AutomationDeps,
    AutomationRefused,
    approve,
    override_hold,
    propose,
)

NOW = datetime(2026, 1, 5, 12, tzinfo=UTC)
ON = AutomationSettings(auto_execute=True)


def action(**changes: Any) -> ProposedAction:
    base: dict[str, Any] = {"customer_id": "acme", "action_type": "add_modifier",
                            "target": "claim:C1:1", "confidence": 97, "dollars_cents": 14000,
                            "details": {"modifier": "GP", "current": {"modifiers": []}}}
    return ProposedAction.model_validate({**base, **changes})


def test_the_three_tiers() -> None:
    assert classify(action(), ON)[0] is Tier.AUTO_EXECUTE
    assert classify(action(), AutomationSettings())[0] is Tier.REVIEW  # off by default
    tier, why = classify(action(confidence=90), ON)
    assert tier is Tier.REVIEW and why == ["confidence 90 below 95"]
    tier, why = classify(action(dollars_cents=100_000), ON)
    assert tier is Tier.REVIEW and "$1,000.00 at stake" in why[0]
    assert classify(action(confidence=40), ON)[0] is Tier.ESCALATE
    narrow = AutomationSettings(auto_execute=True, allowed_actions=frozenset({"hold_claim"}))
    assert classify(action(), narrow)[0] is Tier.REVIEW
    tier, why = classify(action(action_type="appeal"), ON)
    assert tier is Tier.ESCALATE and "legal argument" in why[0]
    assert classify(action(action_type="code_change", reimbursement_change=0.05), ON)[0] \
        is Tier.REVIEW  # allowed to be proposed, never implemented automatically
    assert classify(action(action_type="code_change", reimbursement_change=0.2), ON)[0] \
        is Tier.ESCALATE


def test_settings_that_allow_a_prohibited_action_are_refused_clearly() -> None:
    with pytest.raises(ValidationError, match="cannot be automated: appeal: an appeal is"):
        AutomationSettings(allowed_actions=frozenset({"appeal", "add_modifier"}))
    with pytest.raises(ValidationError):
        AutomationSettings(confidence_threshold=10)
    with pytest.raises(ValidationError, match="not an e-mail"):
        AutomationSettings(escalation_contacts=("boss@x.org\r\nBcc: y@z.org",))
    with pytest.raises(ValidationError):
        AutomationSettings.model_validate({"auto_execute": True, "surprise": 1})


@given(st.sampled_from(list(ActionType)),
       st.sets(st.sampled_from(list(ComplianceFlag))),
       st.integers(0, 100), st.integers(0, 10**9),
       st.none() | st.floats(-1, 1, allow_nan=False),
       st.booleans(), st.integers(0, 100), st.integers(0, 10**9))
def test_a_prohibited_action_never_auto_executes_whatever_the_settings(
        kind: ActionType, flags: set[ComplianceFlag], confidence: int, cents: int,
        change: float | None, auto: bool, threshold: int, dollars: int) -> None:
    proposed = action(action_type=kind, compliance_flags=flags, confidence=confidence,
                      dollars_cents=cents, reimbursement_change=change)
    # settings built without validation: even a tampered stored document cannot allow it
    anything = AutomationSettings.model_construct(
        auto_execute=auto, confidence_threshold=threshold, dollar_threshold_cents=dollars,
        allowed_actions=frozenset(ActionType), escalation_contacts=())
    tier, _ = classify(proposed, anything)
    if prohibited(proposed):
        assert tier is Tier.ESCALATE
    if kind in PROHIBITED_TYPES or flags:
        assert tier is not Tier.AUTO_EXECUTE


def test_actions_say_before_and_after() -> None:
    assert add_modifier(["59"], "GP") == ({"modifiers": ["59"]}, {"modifiers": ["59", "GP"]})
    assert add_modifier(["GP"], "GP")[1] == {"modifiers": ["GP"]}
    with pytest.raises(ActionError):
        add_modifier(["a", "b", "c", "d"], "GP")
    request = reauth_request({"authorization_number": "A1", "start_date": "2025-07-01",
                              "end_date": "2025-12-28", "units_per_day": 2.0,
                              "units_authorized": 400, "units_used": 350,
                              "reauth_deadline": "2025-12-14"}, date(2025, 12, 1))
    assert request["requested_units"] == round(2.0 * 180 * 1.1)
    assert request["requested_period"]["start"] == "2025-12-29"
    assert request["utilization_report"]["utilization"] == 0.875
    assert reauth_request({}, date(2025, 12, 1))["requested_period"]["days"] == 180


class Store:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.log: list[dict[str, Any]] = []

    def begin(self, customer_id: str, action_id: str, document: dict[str, Any]) -> bool:
        if action_id in self.docs:
            return False
        self.docs[action_id] = dict(document)
        return True

    def update(self, customer_id: str, action_id: str, fields: dict[str, Any]) -> None:
        self.docs[action_id].update(fields)

    def get(self, customer_id: str, action_id: str) -> dict[str, Any] | None:
        return self.docs.get(action_id)

    def actions(self, customer_id: str, status: str | None, limit: int) -> list[dict[str, Any]]:
        return [d for d in self.docs.values() if status in (None, d["status"])][:limit]

    def append_log(self, customer_id: str, entry: dict[str, Any]) -> None:
        self.log.append(entry)

    def log_entries(self, customer_id: str, limit: int) -> list[dict[str, Any]]:
        return self.log[-limit:]


def deps(settings: dict[str, Any]) -> tuple[AutomationDeps, Store, FakePublisher]:
    store, publisher = Store(), FakePublisher()
    return AutomationDeps(tenants=Tenants({"acme": {"automation": settings}}), store=store,
                          alerts=Alerts(), publisher=publisher, alerts_topic="alerts",
                          clock=lambda: NOW), store, publisher


def test_proposed_twice_executed_once_and_logged() -> None:
    auto, store, _ = deps({"auto_execute": True})
    first = propose(action(), auto)
    assert first["status"] == "executed" and first["after"] == {"modifiers": ["GP"]}
    assert propose(action(), auto) == {"action_id": action().action_id, "status": "duplicate"}
    assert [e["event"] for e in store.log] == ["classified", "executed"]
    assert store.log[1]["before"] == {"modifiers": []} and store.log[1]["by"] == "upstream"


def test_review_then_approval_and_escalation_alert() -> None:
    manual, store, publisher = deps({})
    queued = propose(action(), manual)
    assert queued["status"] == "queued_for_review"
    done = approve("acme", queued["action_id"], "dashboard:k1", "checked the chart", manual)
    assert done["status"] == "executed" and store.log[-1]["by"] == "dashboard:k1"
    with pytest.raises(AutomationRefused):
        approve("acme", queued["action_id"], "k", None, manual)  # already executed
    escalated = propose(action(action_type="appeal", target="claim:C9"), manual)
    assert escalated["status"] == "escalated"
    assert publisher.messages[-1][2]["type"] == "automation_escalation"
    with pytest.raises(AutomationRefused):
        approve("acme", escalated["action_id"], "k", None, manual)
    with pytest.raises(KeyError):
        approve("acme", "nope", "k", None, manual)


def test_a_hold_is_released_only_with_a_justification_that_is_logged() -> None:
    auto, store, _ = deps({"auto_execute": True})
    hold = propose(action(action_type="hold_claim", target="claim:C1",
                          details={"claim_id": "C1"}), auto)
    assert hold["status"] == "executed"
    with pytest.raises(AutomationRefused, match="justification"):
        override_hold("acme", hold["action_id"], "k", "ok", auto)
    reason = "Payer confirmed by phone the auth covers these dates"
    assert override_hold("acme", hold["action_id"], "k", reason, auto)["status"] == "overridden"
    assert store.log[-1]["event"] == "override" and store.log[-1]["why"] == reason
    with pytest.raises(AutomationRefused):
        override_hold("acme", hold["action_id"], "k", reason, auto)


def test_broken_stored_settings_mean_automation_off() -> None:
    broken, _, _ = deps({"auto_execute": True, "allowed_actions": ["appeal"]})
    assert propose(action(), broken)["status"] == "queued_for_review"
