"""What the JSON API answers, as pydantic models: the OpenAPI document's response schemas.

Stored documents grow fields over time (alerts gain history, feedback, suppression counts),
so each model names the fields a client can rely on, with their types, and allows more
(`extra="allow"` → `additionalProperties`). A field the code may leave empty is optional.
The live API is checked against these by schemathesis in CI (`make api-fuzz`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Problem(_Open):
    type: str
    title: str
    status: int
    detail: str | None = None


class AlertOut(_Open):
    """Contract 4."""

    alert_id: str
    customer_id: str
    type: str
    severity: Severity
    payer: str | None = None
    title: str
    summary: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    evidence: dict[str, Any] = Field(default_factory=dict)
    recommended_actions: list[Any] = Field(default_factory=list)
    window: dict[str, Any] | None = None
    status: Literal["open", "acknowledged", "resolved", "noise"]
    history: list[dict[str, Any]] = Field(default_factory=list)


class AlertPage(BaseModel):
    alerts: list[AlertOut]
    next_page_token: str | None


class AuthorizationOut(_Open):
    authorization_number: str
    payer: str | None = None
    end_date: str | None = None
    status: str | None = None


class AuthorizationList(BaseModel):
    authorizations: list[AuthorizationOut]


class Renewed(BaseModel):
    authorization_number: str
    status: Literal["RENEWED"]


class UploadOut(_Open):
    upload_id: str
    status: str | None = None


class UploadList(BaseModel):
    uploads: list[UploadOut]


class SummaryWeek(BaseModel):
    payer: str
    week: str
    decided: int
    denied: int
    denial_rate: float | None
    denied_dollars: float
    paid_dollars: float


class ClaimsSummary(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    first: str = Field(alias="from")
    to: str
    weeks: list[SummaryWeek]


class SettingsOut(_Open):
    notifications: dict[str, Any]
    payer_aliases: dict[str, str]
    automation: dict[str, Any]
    risk_rules: dict[str, Any] | None = None
    providers: dict[str, Any] | None = None
    visit_limits: dict[str, int] | None = None
    kx_thresholds: dict[str, int] | None = None
    esrd_base_rate_cents: int | None = None
    sso: dict[str, Any] | None = None
    mfa_roles: list[str] | None = None


class ActionOut(_Open):
    action_id: str | None = None
    status: str | None = None


class ActionList(BaseModel):
    actions: list[ActionOut]


class LogEntries(BaseModel):
    entries: list[dict[str, Any]]


class Factor(BaseModel):
    name: str
    points: float
    evidence: Any = None


class LineScoreOut(BaseModel):
    line: int
    score: float
    category: Literal["LOW", "MEDIUM", "HIGH"]
    recommendation: str
    denial_probability: float | None = None
    reasons: list[str] = Field(default_factory=list)  # the model's top reasons, in words
    factors: list[Factor]
    fixes: list[dict[str, Any]]


class RiskScoreOut(BaseModel):
    score: float
    category: Literal["LOW", "MEDIUM", "HIGH"]
    recommendation: str
    worst_line: int
    claim_id: str
    method: Literal["rules", "calibrated", "boosted"]
    lines: list[LineScoreOut]
    rules_conflicts: list[Any]


class DeadLetterTopic(BaseModel):
    topic: str
    held: int
    oldest: str | None
    reasons: dict[str, int]


class AuditEntryOut(BaseModel):
    at: str
    actor: str
    role: str
    action: str
    resource: str
    outcome: int
    ip: str | None = None
    user_agent: str | None = None


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    next_page_token: str | None


class DeadLetters(BaseModel):
    topics: list[DeadLetterTopic]


class Replayed(BaseModel):
    topic: str
    replayed: int
    skipped_other_tenants: int


Archetype = Literal["Aggressive Denier", "Slow Payer", "Prompt Payer", "Underpayer", "Typical"]


class PayerFingerprint(_Open):
    decided_recent: int
    denial_rate: float | None = None
    denial_trend_log_odds: float | None = None
    days_to_payment: float | None = None
    payment_trend_days: float | None = None
    price_index: float | None = None
    price_trend: float | None = None
    carc_mix_shift: float | None = None
    appeal_overturn_rate: float | None = None


class PayerOut(_Open):
    """Contract 5's payer entry: fingerprint, archetype and the evidence in words."""
    payer: str
    payer_id: str
    archetype: Archetype
    fingerprint: PayerFingerprint
    evidence: dict[str, Any]


class PayerList(BaseModel):
    as_of: str | None
    payers: list[PayerOut]
