"""The settings page (owners and admins): every setting `PUT /v1/settings` takes, in five
forms, validated by the API's own `SettingsBody`; errors beside the field with what was typed
kept; "Send a test" per notification channel.

A section that fails validation changes nothing; a section that passes replaces exactly the
settings it shows (an emptied list is an emptied setting).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import ValidationError

from upstream.domain.practice import second_factor as factor
from upstream.domain.practice import settings_forms as forms
from upstream.domain.practice.people import ROLES
from upstream.services.api_requests import SettingsBody
from upstream.services.automation import settings_for
from upstream.services.dashboard_visit import Visit, common
from upstream.services.tenants import sso_client_secret
from upstream.services.web_pages import Page, message, page, redirect

if TYPE_CHECKING:
    from upstream.services.dashboard import DashboardDeps

# (customer, channel id, who asked) → the request is on its way to the dispatcher.
ChannelTester = Callable[[str, str, str], None]
SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
STATES = ("AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL",
          "IN", "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE",
          "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD",
          "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY", "PR", "GU", "VI")


def _stored(tenant: Mapping[str, Any], default_mfa_roles: tuple[str, ...]) -> dict[str, Any]:
    """Every field of every form, as the stored settings fill it."""
    notices = tenant.get("notifications") or {}
    auto = settings_for(dict(tenant))
    rules = tenant.get("risk_rules") or {}
    values: dict[str, Any] = {
        "timezone": notices.get("timezone") or "America/New_York",
        "weekly_alert_budget": str(notices.get("weekly_alert_budget") or 10),
        "channels": forms.channel_rows(notices),
        "state": tenant.get("state") or "",
        "esrd_base_rate": f"{int(tenant['esrd_base_rate_cents']) / 100:.2f}"
        if tenant.get("esrd_base_rate_cents") else "",
        "payer_aliases": forms.pairs_text(tenant.get("payer_aliases")),
        "visit_limits": forms.pairs_text(tenant.get("visit_limits")),
        "kx_thresholds": forms.pairs_text(tenant.get("kx_thresholds"), money=True),
        "fee_schedule": forms.fee_schedule_text(tenant.get("fee_schedule")),
        "auto_execute": "on" if auto.auto_execute else "",
        "confidence_threshold": str(auto.confidence_threshold),
        "dollar_threshold": f"{auto.dollar_threshold_cents / 100:.2f}",
        "escalation_contacts": ", ".join(auto.escalation_contacts),
        "providers": "\n".join(
            ", ".join([npi, str(p.get("credential", "")), *([str(p["expires"])]
                                                            if p.get("expires") else [])])
            for npi, p in (tenant.get("providers") or {}).items()),
        "modifiers": forms.csv_text(rules.get("modifiers"), forms.MODIFIER_COLUMNS),
        "prior_auth": forms.csv_text(rules.get("prior_auth"), forms.PRIOR_AUTH_COLUMNS),
        "disable_defaults": "on" if rules.get("disable_defaults") else "",
        **_sso_values(tenant)}
    required = factor.required_roles(tenant, default_mfa_roles)
    values.update({f"mfa_{role}": "on" if role in required else "" for role in ROLES})
    for action in forms.ACTIONS:
        values[f"allow_{action}"] = "on" if action in {a.value for a in auto.allowed_actions} \
            else ""
    return values


def _sso_values(tenant: Mapping[str, Any]) -> dict[str, str]:
    raw = tenant.get("sso")
    stored: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    return {"sso_issuer": str(stored.get("issuer") or ""),
            "sso_client_id": str(stored.get("client_id") or ""),
            "sso_domains": ", ".join(str(d) for d in stored.get("domains") or []),
            "sso_required": "on" if stored.get("required") else ""}


def _typed(section: str, form: Mapping[str, str]) -> dict[str, Any]:
    """What the person typed into the section they sent, to show it again beside errors."""
    typed: dict[str, Any] = {k: v for k, v in form.items() if not k.startswith("ch")}
    if section == "notifications":
        rows = []
        for index in sorted({k.split("_")[0] for k in form if k.startswith("ch")}):
            rows.append({f: form.get(f"{index}_{f}", "") for f in forms.CHANNEL_FIELDS})
        typed["channels"] = [r for r in rows if r.get("id")]
    typed.pop("sso_client_secret", None)  # never echoed into the page
    for checkbox in ("auto_execute", "disable_defaults", "sso_required",
                     *(f"mfa_{role}" for role in ROLES),
                     *(f"allow_{a}" for a in forms.ACTIONS)):
        typed.setdefault(checkbox, "")
    return typed


def settings_page(visit: Visit, deps: DashboardDeps, errors: dict[str, str] | None = None,
                  section: str | None = None, status: int = 200) -> Page:
    tenant = deps.stores.tenant(visit.principal.customer_id) or {}
    values = _stored(tenant, deps.mfa_roles)
    if section is not None:
        values.update(_typed(section, visit.form))
    customer = visit.principal.customer_id
    sso_deps = deps.sso() if deps.sso is not None else None
    return page(status, "settings.html", **common(visit), values=values, errors=errors or {},
                section=section, severities=SEVERITIES, states=STATES, actions=forms.ACTIONS,
                can_test=deps.test_channel is not None, back="/settings", roles=ROLES,
                sso_callback=sso_deps.redirect_uri if sso_deps else None,
                sso_start=(sso_deps.dashboard_url.rstrip("/") + "/login/sso?practice="
                           + quote(customer)) if sso_deps else None,
                sso_secret_set=bool(deps.secrets and deps.secrets.get(
                    sso_client_secret(customer))))


def save_section(visit: Visit, deps: DashboardDeps, section: str) -> Page:
    parser = forms.PARSERS.get(section)
    if parser is None:
        return message(404, "Not found", "There is no such settings section.")
    try:
        body = parser(visit.form)
    except forms.FormError as exc:
        return settings_page(visit, deps, {exc.field: str(exc)}, section, 400)
    try:
        checked = SettingsBody.model_validate(body)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors():
            loc = tuple(error["loc"])
            errors.setdefault(forms.field_of(loc), forms.where(loc) + str(error["msg"]))
        return settings_page(visit, deps, errors, section, 400)
    stored = checked.model_dump(mode="json")
    fields = {k: stored[k] for k in body if stored.get(k) is not None}
    if section == "sso":
        refused = _sso_secret(visit, deps, checked.sso is not None)
        if refused:
            return settings_page(visit, deps, refused, section, 400)
        # None turns single sign-on off; the roles are the practice's choice from now on.
        fields = {"sso": stored.get("sso"), "mfa_roles": stored.get("mfa_roles") or []}
    deps.stores.update_tenant(visit.principal.customer_id, fields)
    return redirect(f"/settings?done=saved#{section}")


def _sso_secret(visit: Visit, deps: DashboardDeps, enabling: bool) -> dict[str, str]:
    """The provider's client secret into Secret Manager (typed once, never shown again);
    errors beside the field when single sign-on would be on without one."""
    typed = visit.form.get("sso_client_secret", "").strip()
    if not enabling:
        return {}
    name = sso_client_secret(visit.principal.customer_id)
    if deps.secrets is None:
        return {"sso_client_secret": "This deployment cannot store secrets from the page."}
    if typed:
        if len(typed) > 512 or not typed.isprintable():
            return {"sso_client_secret": "The client secret your provider issued (printable "
                                         "characters, at most 512)."}
        deps.secrets.put(name, typed.encode())
        return {}
    if deps.secrets.get(name) is None:
        return {"sso_client_secret": "The client secret your provider issued for Upstream."}
    return {}


def test_channel(visit: Visit, deps: DashboardDeps, channel_id: str) -> Page:
    tenant = deps.stores.tenant(visit.principal.customer_id) or {}
    known = {str(c.get("id")) for c in (tenant.get("notifications") or {}).get("channels")
             or []}
    if channel_id not in known:
        return message(404, "Not found", "There is no such saved channel; save it first.")
    if deps.test_channel is None:
        return message(503, "Unavailable", "Tests cannot be sent from this deployment.")
    deps.test_channel(visit.principal.customer_id, channel_id,
                      visit.principal.actor.partition(":")[2] or visit.principal.actor)
    return redirect("/settings?done=test-sent#notifications")

