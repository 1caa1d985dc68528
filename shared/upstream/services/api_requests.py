"""What the JSON API accepts: its query parameters and request bodies, as the pydantic models
that validate them (strict: unknown fields are refused). The OpenAPI document is built from
these same models (`api_openapi`)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from upstream.domain.automation.tiers import AutomationSettings
from upstream.domain.notify.routing import NotificationSettings
from upstream.domain.practice.people import Role
from upstream.domain.practice.sso import SsoSettings

MAX_PAGE = 200


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AlertQuery(_Strict):
    status: Literal["open", "acknowledged", "resolved", "noise"] | None = None
    type: str | None = Field(None, pattern=r"^[a-z_]{1,40}$")
    payer: str | None = Field(None, min_length=1, max_length=100)
    severity: Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"] | None = None
    page_size: int = Field(50, ge=1, le=MAX_PAGE)
    page_token: str | None = Field(None, max_length=200)


class PageQuery(_Strict):
    page_size: int = Field(50, ge=1, le=MAX_PAGE)


class AuditQuery(_Strict):
    since: date | None = None
    actor: str | None = Field(None, min_length=1, max_length=200)
    page_size: int = Field(50, ge=1, le=MAX_PAGE)
    page_token: str | None = Field(None, max_length=200)


class AuthorizationQuery(_Strict):
    status: Literal["ACTIVE", "EXPIRING_SOON", "EXPIRED", "RENEWED"] | None = None
    expiring_within_days: int | None = Field(None, ge=0, le=365)


class SummaryQuery(_Strict):
    weeks: int = Field(13, ge=1, le=52)
    as_of: date | None = None  # default today: the weeks before it


class ActionBody(_Strict):
    note: str | None = Field(None, max_length=500)


Npi = Annotated[str, StringConstraints(pattern=r"^[0-9]{10}$")]
# A map key becomes a Firestore field name: empty ones are refused by Firestore (a 500 before
# this), and a name is a payer's, a plan's or a code's, so printable and bounded.
Key = Annotated[str, StringConstraints(min_length=1, max_length=100,
                                       pattern=r"^[^\x00-\x1f`]+$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Year = Annotated[str, StringConstraints(pattern=r"^20[0-9]{2}$")]
Codes = Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{5}(\|[0-9A-Z]{5})*$")]


class ProviderIn(_Strict):
    credential: str = Field(pattern=r"^[A-Za-z-]{2,12}$")
    expires: date | None = None


State = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


class ModifierRowIn(_Strict):
    payer: str = Field(min_length=1, max_length=100)
    state: State | None = None  # the practice's own rows hold where it bills
    plan: str | None = Field(None, min_length=1, max_length=60)
    cpt: Codes
    modifiers: str = Field(pattern=r"^[0-9A-Z]{2}(\|[0-9A-Z]{2})*$")
    when_credential: str | None = Field(None, pattern=r"^[A-Za-z-]{2,12}$")
    points_missing: int = Field(20, ge=0, le=100)
    points_wrong: int = Field(15, ge=0, le=100)
    source: str | None = Field(None, max_length=300)


class PriorAuthRowIn(_Strict):
    payer: str = Field(min_length=1, max_length=100)
    cpt: Codes
    program: str | None = Field(None, max_length=100)
    source: str | None = Field(None, max_length=300)


class RiskRulesIn(_Strict):
    modifiers: list[ModifierRowIn] = Field(default_factory=list, max_length=200)
    prior_auth: list[PriorAuthRowIn] = Field(default_factory=list, max_length=200)
    disable_defaults: bool = False


class FeeRowIn(_Strict):
    payer: Name
    cpt: str = Field(pattern=r"^[0-9A-Z]{5}$")
    cents_per_unit: int = Field(ge=1, le=100_000_000)


class SettingsBody(_Strict):
    notifications: NotificationSettings | None = None
    payer_aliases: dict[Key, Name] | None = Field(None, max_length=500)
    automation: AutomationSettings | None = None
    risk_rules: RiskRulesIn | None = None
    providers: dict[Npi, ProviderIn] | None = Field(None, max_length=500)
    visit_limits: dict[Key, Annotated[int, Field(ge=1, le=366)]] | None = Field(
        None, max_length=100)
    kx_thresholds: dict[Year, Annotated[int, Field(ge=0, le=10_000_000)]] | None = Field(
        None, max_length=20)
    esrd_base_rate_cents: int | None = Field(None, ge=1, le=10_000_000)
    # Where the practice bills: state Medicaid conventions (ABA level modifiers) depend on it.
    state: State | None = None
    # What each payer contracted per unit of each code (underpayment against the contract).
    fee_schedule: list[FeeRowIn] | None = Field(None, max_length=2000)
    # Single sign-on with the practice's own OpenID Connect provider (the client secret is
    # set on the settings page, into Secret Manager, never in this body).
    sso: SsoSettings | None = None
    # The roles that sign in with an authenticator code (second_factor.py); unset, the
    # deployment's default (production: owner, admin).
    mfa_roles: list[Role] | None = Field(
        None, max_length=4)


# What the specialty checks and the risk score read from the tenant document.
PRACTICE_SETTINGS = ("risk_rules", "providers", "visit_limits", "kx_thresholds",
                     "esrd_base_rate_cents", "state", "fee_schedule", "sso", "mfa_roles")


class ActionQuery(_Strict):
    status: Literal["proposed", "queued_for_review", "escalated", "executed", "failed",
                    "overridden"] | None = None
    page_size: int = Field(50, ge=1, le=MAX_PAGE)


class JustificationBody(_Strict):
    justification: str = Field(min_length=1, max_length=1000)
