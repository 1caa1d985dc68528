"""The settings forms of the dashboard: what a practice's admin types, turned into exactly the
body `PUT /v1/settings` takes, and that body's validation errors turned back into messages
beside the fields that caused them.

Validation is not repeated here: each section becomes `{section: value}` and goes through the
same `SettingsBody` model the API uses, so the browser and the API can never disagree on what
is valid. Lists a billing manager keeps in a spreadsheet (payer aliases, visit limits, KX
thresholds, providers, rule rows) are text areas of `key = value` lines or CSV with a header,
which paste straight from one.

Money is typed in dollars (`2410.00`) and stored in cents, as everywhere else.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from upstream.domain.practice.fee_schedule import FeeScheduleError, parse_fee_schedule
from upstream.domain.practice.people import ROLES

SECTIONS = ("notifications", "practice", "automation", "providers", "risk_rules", "sso")
CHANNEL_FIELDS = ("id", "kind", "min_severity", "mode", "recipients", "url", "types",
                  "weekly_summary", "quiet_start", "quiet_end")
MODIFIER_COLUMNS = ("payer", "state", "plan", "cpt", "modifiers", "when_credential",
                    "points_missing", "points_wrong", "source")
PRIOR_AUTH_COLUMNS = ("payer", "cpt", "program", "source")
ACTIONS = ("add_modifier", "hold_claim", "reauth_request")
MAX_CHANNELS = 20
_SPLIT = re.compile(r"[,;\s]+")


class FormError(ValueError):
    """A form field that cannot even be read (a price that is not a number, a line without
    `=`): `field` is where the message goes."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _words(text: str) -> list[str]:
    return [w for w in _SPLIT.split(text or "") if w]


def _cents(field: str, text: str) -> int | None:
    text = (text or "").strip().lstrip("$").replace(",", "")
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise FormError(field, "a dollar amount, like 2410.00") from None
    if not value.is_finite() or abs(value) > 10**9:
        raise FormError(field, "a dollar amount, like 2410.00")
    return int((value * 100).to_integral_value())


def _pairs(field: str, text: str) -> dict[str, str]:
    """`key = value` lines (blank lines and `#` comments skipped)."""
    found: dict[str, str] = {}
    for number, line in enumerate((text or "").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise FormError(field, f"line {number}: write it as  name = value")
        found[key.strip()] = value.strip()
    return found


def _csv_rows(field: str, text: str, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return []
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    header = [c.strip().lower() for c in rows[0]]
    unknown = [c for c in header if c not in columns]
    if unknown or not header:
        raise FormError(field, f"the first line names the columns: {', '.join(columns)}")
    out = []
    for row in rows[1:]:
        values = {name: cell.strip() for name, cell in zip(header, row, strict=False)
                  if cell.strip()}
        out.append(values)
    return out


def _channels(form: Mapping[str, str]) -> list[dict[str, Any]]:
    channels = []
    indexes = sorted({int(m.group(1)) for k in form if (m := re.fullmatch(r"ch(\d+)_id", k))
                      and int(m.group(1)) < MAX_CHANNELS})
    for index in [*indexes, "new"]:
        prefix = f"ch{index}_"
        if form.get(prefix + "remove") or not form.get(prefix + "id", "").strip():
            continue
        channel: dict[str, Any] = {
            "id": form[prefix + "id"].strip(), "kind": form.get(prefix + "kind", "email"),
            "min_severity": form.get(prefix + "min_severity", "MEDIUM"),
            "mode": form.get(prefix + "mode", "realtime"),
            "recipients": _words(form.get(prefix + "recipients", "")),
            "types": _words(form.get(prefix + "types", "")),
            "weekly_summary": bool(form.get(prefix + "weekly_summary"))}
        url = form.get(prefix + "url", "").strip()
        if url:
            channel["url"] = url
        start, end = form.get(prefix + "quiet_start", ""), form.get(prefix + "quiet_end", "")
        if start or end:
            channel["quiet_hours"] = {"start": start, "end": end}
        channels.append(channel)
    return channels


def notifications(form: Mapping[str, str]) -> dict[str, Any]:
    budget = form.get("weekly_alert_budget", "").strip()
    return {"notifications": {"timezone": form.get("timezone", "").strip(),
                              "weekly_alert_budget": budget or 10,
                              "channels": _channels(form)}}


def practice(form: Mapping[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "payer_aliases": _pairs("payer_aliases", form.get("payer_aliases", "")),
        "visit_limits": _pairs("visit_limits", form.get("visit_limits", "")),
        "kx_thresholds": {year: _cents("kx_thresholds", value) for year, value in
                          _pairs("kx_thresholds", form.get("kx_thresholds", "")).items()}}
    if form.get("state", "").strip():
        body["state"] = form["state"].strip().upper()
    rate = _cents("esrd_base_rate", form.get("esrd_base_rate", ""))
    if rate is not None:
        body["esrd_base_rate_cents"] = rate
    schedule = form.get("fee_schedule", "").strip()
    try:
        body["fee_schedule"] = parse_fee_schedule(schedule) if schedule else []
    except FeeScheduleError as exc:
        raise FormError("fee_schedule", str(exc)) from None
    return body


def fee_schedule_text(rows: Any) -> str:
    """The stored fee schedule as the CSV the form shows."""
    if not rows:
        return ""
    return "payer,cpt,rate\n" + "\n".join(
        f"{row.get('payer')},{row.get('cpt')},{int(row.get('cents_per_unit') or 0) / 100:.2f}"
        for row in rows if isinstance(row, Mapping))


def automation(form: Mapping[str, str]) -> dict[str, Any]:
    return {"automation": {
        "auto_execute": bool(form.get("auto_execute")),
        "confidence_threshold": form.get("confidence_threshold", "").strip() or 95,
        "dollar_threshold_cents": _cents("dollar_threshold", form.get("dollar_threshold", ""))
        or 0,
        "allowed_actions": [a for a in ACTIONS if form.get(f"allow_{a}")],
        "escalation_contacts": _words(form.get("escalation_contacts", ""))}}


def providers(form: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for number, line in enumerate(form.get("providers", "").splitlines(), 1):
        cells = [c.strip() for c in line.split(",")]
        if not any(cells):
            continue
        if len(cells) not in (2, 3):
            raise FormError("providers", f"line {number}: NPI, credential[, expires "
                                         "YYYY-MM-DD]")
        found[cells[0]] = {"credential": cells[1],
                           **({"expires": cells[2]} if len(cells) == 3 and cells[2] else {})}
    return {"providers": found}


def risk_rules(form: Mapping[str, str]) -> dict[str, Any]:
    return {"risk_rules": {
        "modifiers": _csv_rows("modifiers", form.get("modifiers", ""), MODIFIER_COLUMNS),
        "prior_auth": _csv_rows("prior_auth", form.get("prior_auth", ""), PRIOR_AUTH_COLUMNS),
        "disable_defaults": bool(form.get("disable_defaults"))}}


def single_sign_on(form: Mapping[str, str]) -> dict[str, Any]:
    """Sign-in: the roles asked for an authenticator code, and the practice's OpenID Connect
    provider (an empty issuer turns single sign-on off). The client secret is not part of the
    body: it goes to Secret Manager (`dashboard_settings`)."""
    roles = [role for role in ROLES if form.get(f"mfa_{role}")]
    issuer = form.get("sso_issuer", "").strip()
    if not issuer:
        return {"sso": None, "mfa_roles": roles}
    return {"sso": {"issuer": issuer, "client_id": form.get("sso_client_id", "").strip(),
                    "domains": _words(form.get("sso_domains", "").lower()),
                    "required": bool(form.get("sso_required"))}, "mfa_roles": roles}


PARSERS: dict[str, Callable[[Mapping[str, str]], dict[str, Any]]] = {
    "notifications": notifications, "practice": practice, "automation": automation,
    "providers": providers, "risk_rules": risk_rules, "sso": single_sign_on}


def field_of(loc: tuple[Any, ...]) -> str:
    """Which form field a `SettingsBody` validation error belongs beside."""
    section = str(loc[0]) if loc else ""
    if section == "notifications":
        if len(loc) >= 4 and loc[1] == "channels" and isinstance(loc[2], int):
            name = str(loc[3])
            return f"ch{loc[2]}_" + ("quiet_start" if name == "quiet_hours" else name)
        return str(loc[1]) if len(loc) > 1 else "channels"
    if section == "risk_rules" and len(loc) > 1:
        return str(loc[1]) if loc[1] in ("modifiers", "prior_auth") else "disable_defaults"
    if section == "sso":
        return "sso_" + str(loc[1]) if len(loc) > 1 else "sso_issuer"
    if section == "mfa_roles":
        return "mfa_roles"
    if section == "automation" and len(loc) > 1:
        return {"dollar_threshold_cents": "dollar_threshold"}.get(str(loc[1]), str(loc[1]))
    return {"esrd_base_rate_cents": "esrd_base_rate"}.get(section, section)


def where(loc: tuple[Any, ...]) -> str:
    """The part of a location a person recognises: the row or the key the error is about."""
    section = str(loc[0]) if loc else ""
    if section in ("payer_aliases", "visit_limits", "kx_thresholds", "providers") \
            and len(loc) > 1:
        return f"{loc[1]}: "
    if section == "fee_schedule" and len(loc) > 1 and isinstance(loc[1], int):
        return f"row {loc[1] + 1}: "
    if section == "risk_rules" and len(loc) > 2 and isinstance(loc[2], int):
        return f"row {loc[2] + 1}: "
    return ""


def channel_rows(notifications_setting: Mapping[str, Any]) -> list[dict[str, str]]:
    """The stored channels as form values (for showing the form again)."""
    rows = []
    for channel in notifications_setting.get("channels") or []:
        quiet = channel.get("quiet_hours") or {}
        rows.append({"id": str(channel.get("id", "")), "kind": str(channel.get("kind", "")),
                     "min_severity": str(channel.get("min_severity", "MEDIUM")),
                     "mode": str(channel.get("mode", "realtime")),
                     "recipients": ", ".join(channel.get("recipients") or []),
                     "url": str(channel.get("url") or ""),
                     "types": ", ".join(channel.get("types") or []),
                     "weekly_summary": "on" if channel.get("weekly_summary", True) else "",
                     "quiet_start": str(quiet.get("start") or "")[:5],
                     "quiet_end": str(quiet.get("end") or "")[:5]})
    return rows


def pairs_text(mapping: Mapping[str, Any] | None, money: bool = False) -> str:
    return "\n".join(f"{k} = {Decimal(int(v)) / 100:.2f}" if money else f"{k} = {v}"
                     for k, v in (mapping or {}).items())


def csv_text(rows: list[dict[str, Any]] | None, columns: tuple[str, ...]) -> str:
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return out.getvalue().strip()
