"""The JSON API (`api` function): alerts, authorizations, uploads, claim summaries, tenant
settings — every route under the tenant of the caller's API key, nothing else.

Answers: 200/201 JSON; RFC 7807 problem+json for every error. 401 is one body for every
unusable key (unknown, wrong, revoked, expired); 403 for a good key without the scope; 404
for an unknown route or an id the tenant does not have (another tenant's id included: no
oracle); 400 for bad JSON, unknown fields or query parameters, page sizes over the limit.
Routing is werkzeug's; the OpenAPI 3 document is built from the same route table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, RequestRedirect, Rule

from upstream.domain import audit, safe_json
from upstream.domain.aggregates import DailyCell
from upstream.domain.payers import PayerNormalizer
from upstream.domain.practice import second_factor
from upstream.domain.practice.people import Principal
from upstream.domain.risk.check import CheckError, parse_claim
from upstream.logs import get_logger
from upstream.ports import DeadLetterHold
from upstream.services import access_audit, page_tokens
from upstream.services import api_schemas as schemas
from upstream.services.api_audit import list_audit
from upstream.services.api_auth import TokenVerifier, authenticate
from upstream.services.api_openapi import Route, document
from upstream.services.api_payers import PayerQuery, get_payer, list_payers
from upstream.services.api_requests import (
    PRACTICE_SETTINGS,
    ActionBody,
    ActionQuery,
    AlertQuery,
    AuditQuery,
    AuthorizationQuery,
    JustificationBody,
    PageQuery,
    SettingsBody,
    SummaryQuery,
)
from upstream.services.automation import (
    AutomationDeps,
    AutomationRefused,
    approve,
    override_hold,
    settings_for,
)
from upstream.services.presubmission import check_claim
from upstream.services.recovery import list_held, replay_held
from upstream.services.risk_history import HistoryCache
from upstream.services.webhooks import Answer, problem
from upstream.topics import TOPICS

log = get_logger(__name__)
_RESERVED_ID = re.compile(r"^__.*__$", re.DOTALL)
MAX_BODY = 64 * 1024
UNAUTHENTICATED = problem(401, "unauthorized", "A valid API key is required")
ALERT_STATUSES = ("open", "acknowledged", "resolved", "noise")
NAMES = frozenset({"payer"})  # path arguments that are names (may hold '/'), not document ids
ACTIONS = {"acknowledge": "acknowledged", "resolve": "resolved", "noise": "noise",
           "reopen": "open"}


class ApiStores(Protocol):
    def key(self, key_id: str) -> dict[str, Any] | None: ...

    def append_audit(self, customer: str, entry: dict[str, Any]) -> None:
        """Creates one entry; never updates one (append-only)."""
        ...

    def audit_page(self, customer: str, since: datetime | None, actor: str | None,
                   size: int, after: str | None) -> tuple[list[dict[str, Any]], str | None]: ...

    def alert_page(self, customer: str, filters: dict[str, str], size: int,
                   after: str | None) -> tuple[list[dict[str, Any]], str | None]: ...

    def alert(self, customer: str, alert_id: str) -> dict[str, Any] | None: ...

    def set_alert_status(self, customer: str, alert_id: str, status: str,
                         entry: dict[str, Any]) -> dict[str, Any] | None: ...

    def alert_feedback(self, customer: str, alert_id: str, useful: bool,
                       entry: dict[str, Any]) -> dict[str, Any] | None: ...

    def authorizations(self, customer: str) -> list[dict[str, Any]]: ...

    def set_authorization_status(self, customer: str, number: str, status: str) -> bool: ...

    def uploads(self, customer: str, limit: int) -> list[dict[str, Any]]: ...

    def upload(self, customer: str, upload_id: str) -> dict[str, Any] | None: ...

    def tenant(self, customer: str) -> dict[str, Any] | None: ...

    def update_tenant(self, customer: str, fields: dict[str, Any]) -> None: ...

    def cells(self, customer: str, first: date, end: date) -> list[DailyCell]: ...

    def payer_report(self, customer: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True, slots=True)
class ApiDeps:
    stores: ApiStores
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # (customer, day) → (monotonic time, history): a check must answer in well under 500 ms,
    # and a tenant's denial history changes once a day, not per claim.
    histories: HistoryCache = field(default_factory=dict)
    automation: AutomationDeps | None = None
    dead_letters: DeadLetterHold | None = None
    identity: TokenVerifier | None = None  # people's ID tokens; keys work without it
    # The roles whose ID tokens must carry our second-step claim where a practice has not
    # chosen (production: owner, admin).
    mfa_roles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Call:
    customer: str
    actor: str  # `key:<key id>` or `user:<e-mail>`
    query: Mapping[str, str]
    body: bytes
    now: datetime


def _by(call: Call) -> str:
    """Who did it, in alert and automation histories (`api-key:<id>` as before people)."""
    kind, _, who = call.actor.partition(":")
    return f"api-key:{who}" if kind == "key" else call.actor


# What each level means, in a 403's detail.
LEVEL_NEEDS = {"read": "any role or key", "write": "a biller, admin or owner, or a write key",
               "admin": "an admin or owner, or a write key"}


class BadRequest(ValueError):
    pass


def _model(model: type[BaseModel], data: Mapping[str, Any]) -> Any:
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise BadRequest(f"{where}: {first['msg']}") from None


def _json_body(call: Call) -> dict[str, Any]:
    if not call.body.strip():
        return {}
    try:
        return safe_json.loads_object(call.body)
    except safe_json.UnsafeJson as exc:
        raise BadRequest(f"the body is not a JSON object we accept ({exc.detail})") from None


def _untoken(token: str | None) -> str | None:
    if token is None:
        return None
    decoded = page_tokens.decode(token)
    if not decoded:
        raise BadRequest("page_token is not one this API gave")
    return decoded


def usable_id(text: str) -> bool:
    """Whether `text` can be a Firestore document id: ≤ 1,500 bytes, no `/`, not `.` or `..`,
    not `__…__` (Firestore reserves those and answers InvalidArgument), and printable."""
    return (0 < len(text.encode("utf-8", "replace")) <= 1500 and "/" not in text
            and text not in (".", "..") and not _RESERVED_ID.match(text)
            and text.isprintable())


def _not_found(what: str) -> Answer:
    return problem(404, "not-found", f"No such {what}")


# --- handlers -------------------------------------------------------------------------------

def list_alerts(call: Call, deps: ApiDeps) -> Answer:
    query = _model(AlertQuery, call.query)
    filters = {k: v for k, v in query.model_dump(include={"status", "type", "payer",
                                                          "severity"}).items() if v}
    page, after = deps.stores.alert_page(call.customer, filters, query.page_size,
                                         _untoken(query.page_token))
    return Answer(200, {"alerts": page, "next_page_token": page_tokens.encode(after)})


def get_alert(call: Call, deps: ApiDeps, alert_id: str) -> Answer:
    alert = deps.stores.alert(call.customer, alert_id)
    return Answer(200, alert) if alert else _not_found("alert")


def alert_action(call: Call, deps: ApiDeps, alert_id: str, action: str) -> Answer:
    body = _model(ActionBody, _json_body(call))
    entry = {"at": call.now.isoformat(), "by": _by(call), "action": action,
             "note": body.note}
    if action in ("useful", "not-useful"):
        found = deps.stores.alert_feedback(call.customer, alert_id, action == "useful", entry)
    elif action in ACTIONS:
        found = deps.stores.set_alert_status(call.customer, alert_id, ACTIONS[action], entry)
    else:
        return _not_found("action")
    return Answer(200, found) if found else _not_found("alert")


def list_authorizations(call: Call, deps: ApiDeps) -> Answer:
    query = _model(AuthorizationQuery, call.query)
    found = deps.stores.authorizations(call.customer)
    if query.status:
        found = [a for a in found if a.get("status") == query.status]
    if query.expiring_within_days is not None:
        today = call.now.date().isoformat()
        horizon = (call.now.date() + timedelta(days=query.expiring_within_days)).isoformat()
        found = [a for a in found if today <= str(a.get("end_date", "")) <= horizon]
    found.sort(key=lambda a: (str(a.get("end_date", "")), str(a.get("authorization_number"))))
    return Answer(200, {"authorizations": found})


def mark_renewed(call: Call, deps: ApiDeps, number: str) -> Answer:
    _model(ActionBody, _json_body(call))
    if not deps.stores.set_authorization_status(call.customer, number, "RENEWED"):
        return _not_found("authorization")
    return Answer(200, {"authorization_number": number, "status": "RENEWED"})


def list_uploads(call: Call, deps: ApiDeps) -> Answer:
    query = _model(PageQuery, call.query)
    return Answer(200, {"uploads": deps.stores.uploads(call.customer, query.page_size)})


def get_upload(call: Call, deps: ApiDeps, upload_id: str) -> Answer:
    found = deps.stores.upload(call.customer, upload_id)
    return Answer(200, found) if found else _not_found("upload")


def claims_summary(call: Call, deps: ApiDeps) -> Answer:
    """Per payer and week (Monday start): decided and denied lines, denial rate, dollars."""
    query = _model(SummaryQuery, call.query)
    today = query.as_of or call.now.date()
    end = today - timedelta(days=today.weekday())  # that week's Monday: complete weeks only
    first = end - timedelta(days=7 * query.weeks)
    weeks: dict[tuple[str, str], dict[str, float]] = {}
    for cell in deps.stores.cells(call.customer, first, end):
        week = (cell.day - timedelta(days=cell.day.weekday())).isoformat()
        row = weeks.setdefault((cell.payer, week), {"decided": 0, "denied": 0,
                                                    "denied_cents": 0, "paid_cents": 0})
        for counter in row:
            row[counter] += float(cell.counters.get(counter, 0) or 0)
    rows = [{"payer": payer, "week": week, "decided": int(r["decided"]),
             "denied": int(r["denied"]),
             "denial_rate": round(r["denied"] / r["decided"], 4) if r["decided"] else None,
             "denied_dollars": round(r["denied_cents"] / 100, 2),
             "paid_dollars": round(r["paid_cents"] / 100, 2)}
            for (payer, week), r in sorted(weeks.items())]
    return Answer(200, {"from": first.isoformat(), "to": end.isoformat(), "weeks": rows})


def get_settings(call: Call, deps: ApiDeps) -> Answer:
    tenant = deps.stores.tenant(call.customer) or {}
    return Answer(200, {"notifications": tenant.get("notifications") or {},
                        "payer_aliases": tenant.get("payer_aliases") or {},
                        "automation": settings_for(tenant).model_dump(mode="json"),
                        **{k: tenant.get(k) for k in PRACTICE_SETTINGS}})


def _automation(deps: ApiDeps) -> AutomationDeps:
    if deps.automation is None:
        raise BadRequest("automation is not configured for this deployment")
    return deps.automation


def list_actions(call: Call, deps: ApiDeps) -> Answer:
    query = _model(ActionQuery, call.query)
    found = _automation(deps).store.actions(call.customer, query.status, query.page_size)
    return Answer(200, {"actions": found})


def _decide(call: Call, deps: ApiDeps,
            act: Callable[[AutomationDeps, str], dict[str, Any]]) -> Answer:
    try:
        return Answer(200, act(_automation(deps), _by(call)))
    except KeyError:
        return _not_found("action")
    except AutomationRefused as exc:
        return problem(409, "conflict", "Not possible now", str(exc))


def approve_action(call: Call, deps: ApiDeps, action_id: str) -> Answer:
    body = _model(ActionBody, _json_body(call))
    return _decide(call, deps, lambda automation, by: approve(
        call.customer, action_id, by, body.note, automation))


def release_hold(call: Call, deps: ApiDeps, action_id: str) -> Answer:
    body = _model(JustificationBody, _json_body(call))
    return _decide(call, deps, lambda automation, by: override_hold(
        call.customer, action_id, by, body.justification, automation))


def automation_log(call: Call, deps: ApiDeps) -> Answer:
    query = _model(PageQuery, call.query)
    return Answer(200, {"entries": _automation(deps).store.log_entries(call.customer,
                                                                       query.page_size)})


def put_settings(call: Call, deps: ApiDeps) -> Answer:
    body = _model(SettingsBody, _json_body(call))
    fields = {k: v for k, v in body.model_dump(mode="json").items() if v is not None}
    if not fields:
        raise BadRequest("nothing to change: give at least one setting")
    deps.stores.update_tenant(call.customer, fields)
    return get_settings(call, deps)


def risk_score(call: Call, deps: ApiDeps) -> Answer:
    """The pre-submission check: our claim JSON or a FHIR Claim → score, factors, fixes."""
    tenant = deps.stores.tenant(call.customer) or {}
    try:
        lines = parse_claim(_json_body(call), PayerNormalizer(tenant.get("payer_aliases")))
    except CheckError as exc:
        raise BadRequest(str(exc)) from None
    return Answer(200, check_claim(call.customer, lines, tenant, deps.stores.authorizations,
                                   deps.stores.cells, deps.histories, call.now.date()))


def _hold(deps: ApiDeps) -> DeadLetterHold:
    if deps.dead_letters is None:
        raise BadRequest("dead-letter holds are not configured for this deployment")
    return deps.dead_letters


def list_dead_letters(call: Call, deps: ApiDeps) -> Answer:
    """Contract 7, for the caller's tenant only: what each dead-letter topic holds of its."""
    hold = _hold(deps)
    # One pull per hold; an empty hold answers only at the pull's deadline, so all at once.
    with ThreadPoolExecutor(len(TOPICS)) as pool:
        found = list(pool.map(lambda topic: list_held(topic, hold, call.customer), TOPICS))
    return Answer(200, {"topics": found})


def replay_dead_letters(call: Call, deps: ApiDeps, topic: str) -> Answer:
    _model(ActionBody, _json_body(call))
    if topic not in TOPICS:
        return _not_found("topic")
    result = replay_held(topic, _hold(deps), call.customer)
    return Answer(200, {"topic": topic, "replayed": result["replayed"],
                        "skipped_other_tenants": result["left_held"]})


_CLAIM_BODY = {"type": "object", "description":
               "Our claim JSON ({claim_id, payer, lines: [...]}) or a FHIR Claim resource",
               "additionalProperties": True}

ROUTES: tuple[Route, ...] = (
    Route("/v1/alerts", "GET", list_alerts, "read", "Alerts, filtered and paged",
          schemas.AlertPage, query=AlertQuery),
    Route("/v1/alerts/<alert_id>", "GET", get_alert, "read", "One alert with its evidence",
          schemas.AlertOut),
    Route("/v1/alerts/<alert_id>/<action>", "POST", alert_action, "write",
          "acknowledge | resolve | noise | reopen | useful | not-useful", schemas.AlertOut,
          body=ActionBody),
    Route("/v1/authorizations", "GET", list_authorizations, "read",
          "Authorizations (status, expiring within N days)", schemas.AuthorizationList,
          query=AuthorizationQuery),
    Route("/v1/authorizations/<number>/renewed", "POST", mark_renewed, "write",
          "Mark an authorization renewed", schemas.Renewed, body=ActionBody),
    Route("/v1/uploads", "GET", list_uploads, "read", "Upload summaries, newest first",
          schemas.UploadList, query=PageQuery),
    Route("/v1/uploads/<upload_id>", "GET", get_upload, "read", "One upload summary",
          schemas.UploadOut),
    Route("/v1/claims/summary", "GET", claims_summary, "read",
          "Denial rate and dollars per payer and week", schemas.ClaimsSummary,
          query=SummaryQuery),
    Route("/v1/payers", "GET", list_payers, "read",
          "Each payer's behaviour fingerprint and archetype (the weekly report)",
          schemas.PayerList, query=PayerQuery),
    Route("/v1/payers/<path:payer>", "GET", get_payer, "read",
          "One payer's fingerprint, archetype and evidence", schemas.PayerOut),
    Route("/v1/settings", "GET", get_settings, "read", "The practice's settings",
          schemas.SettingsOut),
    Route("/v1/settings", "PUT", put_settings, "admin",
          "Change notification rules, payer aliases, automation, risk rules, providers, "
          "limits (at least one)", schemas.SettingsOut, body=SettingsBody, body_required=True),
    Route("/v1/automation/actions", "GET", list_actions, "read",
          "Proposed, queued, escalated and executed actions", schemas.ActionList,
          query=ActionQuery),
    Route("/v1/automation/actions/<action_id>/approve", "POST", approve_action, "write",
          "Approve a queued (Tier 2) action: it executes, logged under this key",
          schemas.ActionOut, body=ActionBody),
    Route("/v1/automation/actions/<action_id>/release-hold", "POST", release_hold, "write",
          "Release an executed hold; a justification is required and logged",
          schemas.ActionOut, body=JustificationBody, body_required=True),
    Route("/v1/automation/log", "GET", automation_log, "read",
          "The execution log, newest first", schemas.LogEntries, query=PageQuery),
    Route("/v1/risk/score", "POST", risk_score, "read",
          "Pre-submission risk score of a claim (JSON or FHIR Claim): score, factors, fixes",
          schemas.RiskScoreOut, body_required=True, body_schema=_CLAIM_BODY),
    Route("/v1/audit", "GET", list_audit, "admin",
          "The access audit: who read or changed what, newest first", schemas.AuditPage,
          query=AuditQuery),
    Route("/v1/admin/dead-letters", "GET", list_dead_letters, "admin",
          "What the dead-letter topics hold of this practice's messages: count, oldest, "
          "reasons", schemas.DeadLetters),
    Route("/v1/admin/dead-letters/<topic>/replay", "POST", replay_dead_letters, "admin",
          "Republish this practice's held messages of one topic (idempotent consumers)",
          schemas.Replayed, body=ActionBody),
)
_MAP = Map([Rule(r.path, methods=[r.method], endpoint=(r.handler, r.scope)) for r in ROUTES],
           strict_slashes=False)



def openapi() -> dict[str, Any]:
    return document(ROUTES)


def handle(method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str],
           body: bytes, deps: ApiDeps, client_ip: str | None = None) -> Answer:
    if path.rstrip("/") == "/v1/openapi.json" and method == "GET":
        return Answer(200, openapi())
    adapter = _MAP.bind("api", "/")
    try:
        (handler, scope), args = adapter.match(path, method=method)
    except RequestRedirect:  # `/v1/alerts/` (an empty id): the route without the slash
        return handle(method, path.rstrip("/"), query, headers, body, deps) \
            if path.rstrip("/") != path else _not_found("route")
    except NotFound:
        return _not_found("route")
    except MethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.valid_methods or []))
        answer = problem(405, "method-not-allowed", "Method not allowed", f"use {allowed}")
        return Answer(405, answer.body, answer.content_type, {"Allow": allowed})
    if len(body) > MAX_BODY:
        return problem(413, "too-large", f"Body over {MAX_BODY // 1024} KiB")
    now = deps.clock()
    principal = authenticate(headers, deps.stores, deps.identity, now)
    if principal is not None and principal.is_person and not second_factor.satisfied(
            principal, deps.stores.tenant(principal.customer_id) or {}, deps.mfa_roles):
        principal = None  # a password alone is not enough for this role (second_factor.py)
    if principal is None:
        # No tenant to file an audit entry under: the refusal is logged instead.
        log.warning("api request refused", extra={"reason": "unauthenticated",
                                                  "path_template": _template(handler, method)})
        return UNAUTHENTICATED
    call = Call(customer=principal.customer_id, actor=principal.actor, query=query, body=body,
                now=now)
    template = _template(handler, method)
    verdict = "ok" if principal.may(scope) else "forbidden"
    return audited(call, deps, f"{method} {template}",
                   lambda found: audit.resource(template, args if found else {}),
                   principal, headers, client_ip,
                   lambda: _answer(call, deps, handler, scope, verdict, args))


def _answer(call: Call, deps: ApiDeps, handler: Any, scope: str, verdict: str,
            args: Mapping[str, Any]) -> Answer:
    if verdict == "forbidden":
        return problem(403, "forbidden", f"This needs the {scope} level ({LEVEL_NEEDS[scope]})")
    if not all(usable_id(value) for name, value in args.items() if name not in NAMES):
        return _not_found("resource")  # no id Firestore refuses can be one the tenant has
    try:
        result: Answer = handler(call, deps, **args)
        return result
    except BadRequest as exc:
        return problem(400, "bad-request", "Bad request", str(exc))


def _template(handler: Any, method: str) -> str:
    return next(r.path for r in ROUTES if r.handler is handler and r.method == method)


def audited(call: Call, deps: ApiDeps, action: str, resource_path: Callable[[bool], str],
            principal: Principal, headers: Mapping[str, str], client_ip: str | None,
            answer: Callable[[], Answer]) -> Answer:
    """The one place every authenticated route passes (Contract 6): the answer, then one
    append-only audit entry of who did what with which outcome. An entry that cannot be
    written turns the answer into a 503: access is not given unrecorded (a change already
    made stays made, and the failure is logged as an error, itself a record). A refused or
    unknown id is recorded as the route's placeholder: an id the caller typed is not ours to
    keep (it could hold anything, another practice's id included)."""
    result = answer()
    if not access_audit.record(
            deps.stores, call.customer, at=call.now, actor=principal.actor,
            role=principal.role, action=action,
            resource_path=resource_path(result.status < 400), outcome=result.status,
            headers=headers, client_ip=client_ip):
        return problem(503, "unavailable", "Try again shortly")
    return result
