"""The automation framework's three tiers (the seeds): every action Upstream proposes is
classified before anything happens.

- Tier 1, auto-execute: the practice turned automation on, allowed this action type, the
  confidence reaches its threshold (default 95), the money at stake is under its threshold
  (default $1,000), and nothing about it touches compliance.
- Tier 2, queue for review: anything else that a biller may decide.
- Tier 3, escalate: the prohibited list, a compliance flag, or confidence below a coin flip —
  a person with authority decides, never the software.

The prohibited list can never auto-execute, whatever the settings say: appeals,
medical-necessity determinations, code changes moving reimbursement by more than 10%,
referral-related claims, anything with False Claims Act exposure (31 U.S.C. §§ 3729–3733:
a systematically wrong automated change is a "knowing" false claim in the statute's sense of
reckless disregard). Settings that try to allow one are refused with the reason.
"""

from __future__ import annotations

import hashlib
import json
from enum import IntEnum, StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ActionType(StrEnum):
    ADD_MODIFIER = "add_modifier"
    HOLD_CLAIM = "hold_claim"
    REAUTH_REQUEST = "reauth_request"
    APPEAL = "appeal"
    MEDICAL_NECESSITY = "medical_necessity_determination"
    CODE_CHANGE = "code_change"


class ComplianceFlag(StrEnum):
    REFERRAL = "referral"
    FALSE_CLAIMS_ACT = "false_claims_act"
    MEDICAL_NECESSITY = "medical_necessity"


class Tier(IntEnum):
    AUTO_EXECUTE = 1
    REVIEW = 2
    ESCALATE = 3


PROHIBITED_TYPES = {
    ActionType.APPEAL: "an appeal is a legal argument made in the practice's name",
    ActionType.MEDICAL_NECESSITY: "medical necessity is a clinician's determination",
}
# A code change moving reimbursement by more than this is upcoding/downcoding territory.
CODE_CHANGE_LIMIT = 0.10
# Below a coin flip the software is guessing: a person with authority decides.
ESCALATE_BELOW_CONFIDENCE = 50
IMPLEMENTED = frozenset({ActionType.ADD_MODIFIER, ActionType.HOLD_CLAIM,
                         ActionType.REAUTH_REQUEST})


class AutomationSettings(BaseModel):
    """Per tenant (`automation` in its document). Automation is off until a practice turns
    it on: the safe default for a tool that acts on claims."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    auto_execute: bool = False
    confidence_threshold: int = Field(95, ge=ESCALATE_BELOW_CONFIDENCE, le=100)
    dollar_threshold_cents: int = Field(100_000, ge=0, le=10_000_000)
    allowed_actions: frozenset[ActionType] = frozenset(IMPLEMENTED)
    escalation_contacts: tuple[str, ...] = Field((), max_length=20)

    @field_validator("allowed_actions")
    @classmethod
    def _no_prohibited(cls, actions: frozenset[ActionType]) -> frozenset[ActionType]:
        refused = sorted(a.value for a in actions if a in PROHIBITED_TYPES)
        if refused:
            reasons = "; ".join(f"{a}: {PROHIBITED_TYPES[ActionType(a)]}" for a in refused)
            raise ValueError(f"cannot be automated: {reasons}")
        return actions

    @field_validator("escalation_contacts")
    @classmethod
    def _emails(cls, contacts: tuple[str, ...]) -> tuple[str, ...]:
        for contact in contacts:
            local, _, domain = contact.partition("@")
            if not local or "." not in domain or any(c in contact for c in " \r\n<>,;"):
                raise ValueError(f"not an e-mail address: {contact[:60]!r}")
        return contacts


class ProposedAction(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    customer_id: str
    action_type: ActionType
    target: str = Field(min_length=1, max_length=200)  # "claim:C1:1", "auth:A-100"
    confidence: int = Field(ge=0, le=100)
    dollars_cents: int = Field(ge=0, le=10_000_000_000)
    compliance_flags: frozenset[ComplianceFlag] = frozenset()
    reimbursement_change: float | None = None  # fraction, code changes only
    details: dict[str, Any] = Field(default_factory=dict)
    reason: str = ""
    # Why a person must confirm it whatever the confidence (advice the rules cannot promise
    # for this practice, e.g. a modifier convention not known for its state).
    review_reasons: tuple[str, ...] = ()
    # What makes two proposals the same action when `details` carry moving numbers (a
    # re-authorization's units used change daily; its authorization and end date do not).
    identity: str | None = Field(None, max_length=300)

    @property
    def action_id(self) -> str:
        """The same proposal twice is one action (executed once)."""
        raw = json.dumps([self.customer_id, self.action_type.value, self.target,
                          self.identity if self.identity is not None else self.details],
                         sort_keys=True, default=str)
        return hashlib.sha256(raw.encode()).hexdigest()[:24]


def prohibited(action: ProposedAction) -> list[str]:
    """Why this action may never run without a person (empty: it may)."""
    reasons = []
    if action.action_type in PROHIBITED_TYPES:
        reasons.append(PROHIBITED_TYPES[action.action_type])
    if ComplianceFlag.REFERRAL in action.compliance_flags:
        reasons.append("referral-related claims need a person (Stark / anti-kickback)")
    if ComplianceFlag.FALSE_CLAIMS_ACT in action.compliance_flags:
        reasons.append("False Claims Act exposure")
    if ComplianceFlag.MEDICAL_NECESSITY in action.compliance_flags:
        reasons.append("touches a medical-necessity determination")
    if action.action_type is ActionType.CODE_CHANGE and (
            action.reimbursement_change is None
            or abs(action.reimbursement_change) > CODE_CHANGE_LIMIT):
        reasons.append("a code change moving reimbursement by more than 10% (or unknown)")
    return reasons


def classify(action: ProposedAction, settings: AutomationSettings) -> tuple[Tier, list[str]]:
    """The tier and every reason for it (what the execution log records)."""
    refused = prohibited(action)
    if refused:
        return Tier.ESCALATE, refused
    if action.confidence < ESCALATE_BELOW_CONFIDENCE:
        return Tier.ESCALATE, [f"confidence {action.confidence} below "
                               f"{ESCALATE_BELOW_CONFIDENCE}"]
    held = []
    if not settings.auto_execute:
        held.append("automation is off for this practice")
    if action.action_type not in settings.allowed_actions:
        held.append(f"{action.action_type.value} is not an allowed automatic action")
    if action.action_type not in IMPLEMENTED:
        held.append(f"{action.action_type.value} has no automatic implementation")
    if action.confidence < settings.confidence_threshold:
        held.append(f"confidence {action.confidence} below {settings.confidence_threshold}")
    held += list(action.review_reasons)
    if action.dollars_cents >= settings.dollar_threshold_cents:
        held.append(f"${action.dollars_cents / 100:,.2f} at stake, at or over "
                    f"${settings.dollar_threshold_cents / 100:,.2f}")
    if held:
        return Tier.REVIEW, held
    return Tier.AUTO_EXECUTE, ["within the practice's automation settings"]
