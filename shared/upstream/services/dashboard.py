"""The dashboard, served by the `api` function beside `/v1/…`: server-rendered pages, forms
that post and redirect (no script, no build chain).

Who is signed in (a person, or an API key's session) is `dashboard_signin`'s job; every page
here names the level it needs (read, write, admin: `domain/practice/people.py`), reads only
under the signed-in practice, carries a CSRF token in its forms, and leaves one access-audit
entry.
Pages answer with a strict Content-Security-Policy (no script; the one style block carries a
nonce; charts are inline PNGs) and are never cached.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule

from upstream.domain import audit
from upstream.domain import dashboard as view
from upstream.domain import session as sessions
from upstream.domain.notify import chart
from upstream.domain.practice.gains import gains, line_doc_ids
from upstream.domain.practice.people import Principal
from upstream.logs import get_logger
from upstream.ports import SecretStore
from upstream.services import access_audit
from upstream.services import dashboard_people as people_pages
from upstream.services.api import ACTIONS, ApiStores
from upstream.services.automation import (
    AutomationDeps,
    AutomationRefused,
    approve,
    override_hold,
)
from upstream.services.dashboard_audit import audit_csv, audit_page
from upstream.services.dashboard_check import check_page, run_check
from upstream.services.dashboard_payers import payer_page, payers_page
from upstream.services.dashboard_reports import alert_pdf, evidence_csv, monthly_csv, monthly_pdf
from upstream.services.dashboard_second_factor import PAGES as SECOND_FACTOR_PAGES
from upstream.services.dashboard_settings import (
    ChannelTester,
    save_section,
    settings_page,
    test_channel,
)
from upstream.services.dashboard_signin import (
    PUBLIC,
    SessionIdentity,
    SignIn,
    next_after_sign_in,
    public_page,
    sign_out,
    signed_in_as,
)
from upstream.services.dashboard_sso import PAGES as SSO_PAGES
from upstream.services.dashboard_uploads import (
    RESUMABLE_FROM_BYTES,
    UploadFiles,
    follow,
    new_upload,
    rejects_file,
    upload_page,
    upload_summary,
)
from upstream.services.dashboard_visit import Visit, common
from upstream.services.monthly_report import MonthlySources
from upstream.services.people import PeopleDeps
from upstream.services.risk_history import HistoryCache
from upstream.services.second_factor_sign_in import SecondFactorDeps
from upstream.services.sso_sign_in import SsoDeps
from upstream.services.web_pages import (
    MAX_FORM,
    Page,
    WebRequest,
    form,
    message,
    page,
    redirect,
    safe_next,
)
from upstream.services.webhooks import INFRASTRUCTURE

log = get_logger(__name__)

ALERT_STATUSES = ("open", "acknowledged", "noise", "resolved")


class DashboardStores(ApiStores, Protocol):
    def failed_deliveries(self, customer: str, limit: int) -> list[dict[str, Any]]: ...

    def last_run_day(self, customer: str) -> date | None: ...

    def flagged_lines(self, customer: str, limit: int) -> list[dict[str, Any]]: ...

    def claim_lines(self, customer: str, doc_ids: list[str]) -> dict[str, dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class DashboardDeps:
    stores: DashboardStores
    session_key: Callable[[], bytes]
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    automation: AutomationDeps | None = None
    identity: SessionIdentity | None = None  # people's sessions; key sessions work without
    sign_in: Callable[[], SignIn] | None = None
    test_channel: ChannelTester | None = None  # publishes a channel test for the dispatcher
    uploads: UploadFiles | None = None  # browser uploads: signed URLs, objects, rejects
    upload_endpoint: str = "https://storage.googleapis.com"
    resumable_from: int = RESUMABLE_FROM_BYTES  # files this large go up in chunks
    histories: HistoryCache = field(default_factory=dict)  # the check's denial history, daily
    pdf: Callable[[str], bytes] | None = None  # HTML → PDF (adapters/pdf.py)
    monthly: MonthlySources | None = None  # what the monthly report reads
    people: Callable[[], PeopleDeps] | None = None  # the people page's use-cases
    # One e-mailed sign-in link per address per window: True when this one may go.
    link_window: Callable[[str], bool] | None = None
    sso: Callable[[], SsoDeps] | None = None  # single sign-on with practices' own providers
    secrets: SecretStore | None = None  # the settings page stores the provider's secret
    second_factor: Callable[[], SecondFactorDeps] | None = None  # authenticator codes
    # The roles that need a code where a practice has not chosen (production: owner, admin).
    mfa_roles: tuple[str, ...] = ()


_Visit = Visit
_page, _message, _redirect, _safe_next, _form = page, message, redirect, safe_next, form


# --- pages -----------------------------------------------------------------------------------

def logout(visit: _Visit, deps: DashboardDeps) -> Page:
    return sign_out(visit.principal, visit.request, deps)


_common = common


def _as_of(visit: _Visit, deps: DashboardDeps) -> date:
    asked = visit.request.query.get("as_of")
    if asked:
        try:
            return date.fromisoformat(asked)
        except ValueError:
            pass
    return view.as_of_day(deps.stores.last_run_day(visit.principal.customer_id),
                          visit.now.date())


def overview(visit: _Visit, deps: DashboardDeps) -> Page:
    customer, stores = visit.principal.customer_id, deps.stores
    as_of = _as_of(visit, deps)
    by_status = {status: stores.alert_page(customer, {"status": status}, 200, None)[0]
                 for status in ALERT_STATUSES}
    everything = [a for found in by_status.values() for a in found]
    cells = stores.cells(customer, as_of - timedelta(days=7 * chart.WEEKS), as_of)
    authorizations = stores.authorizations(customer)
    calendar = view.auth_calendar(authorizations, as_of)
    gained = gains(everything, stores.claim_lines(customer, list(line_doc_ids(everything))),
                   authorizations)
    soon = sum(len(g.rows) for g in calendar if g.ending_soon)
    return _page(200, "dashboard.html", **_common(visit), as_of=as_of.isoformat(),
                 counts=view.counts(by_status),
                 open_alerts=view.order_alerts(by_status["open"]),
                 worked_alerts=view.order_alerts(by_status["acknowledged"]),
                 trends=view.payer_trends(cells, everything, as_of), calendar=calendar,
                 calendar_soon=soon, calendar_rows=sum(len(g.rows) for g in calendar),
                 uploads=view.upload_rows(stores.uploads(customer, 10)),
                 problems=view.delivery_problems(stores.failed_deliveries(customer, 20)),
                 decisions=_decisions(customer, deps), gains=gained, back="/#alerts")


def _decisions(customer: str, deps: DashboardDeps) -> dict[str, list[dict[str, Any]]]:
    """What automation left for people: queued (approve), escalated, holds in force."""
    if deps.automation is None:
        return {"queued": [], "escalated": [], "holds": []}
    store = deps.automation.store
    holds = [a for a in store.actions(customer, "executed", 100)
             if a.get("action_type") == "hold_claim"]
    return {"queued": view.action_rows(store.actions(customer, "queued_for_review", 50)),
            "escalated": view.action_rows(store.actions(customer, "escalated", 50)),
            "holds": view.action_rows(holds)}


def automation_action(visit: _Visit, deps: DashboardDeps, action_id: str,
                      verb: str) -> Page:
    if deps.automation is None or verb not in ("approve", "release-hold"):
        return _message(404, "Not found", "That is not something an action can do.")
    by = visit.principal.actor
    try:
        if verb == "approve":
            approve(visit.principal.customer_id, action_id, by, visit.form.get("note"),
                    deps.automation)
        else:
            override_hold(visit.principal.customer_id, action_id, by,
                          visit.form.get("justification", ""), deps.automation)
    except KeyError:
        return _message(404, "Not found", "There is no such action for your practice.")
    except AutomationRefused as exc:
        return _message(409, "Not done", str(exc))
    return _redirect(_with_done("/#decisions", verb))


def alert_page(visit: _Visit, deps: DashboardDeps, alert_id: str) -> Page:
    customer = visit.principal.customer_id
    found = deps.stores.alert(customer, alert_id)
    if not found:
        return _message(404, "Not found", "There is no such alert for your practice.")
    png = None
    if found.get("payer"):
        as_of = _as_of(visit, deps)
        cells = deps.stores.cells(customer, as_of - timedelta(days=7 * chart.WEEKS), as_of)
        points = chart.weekly_points(cells, str(found["payer"]), as_of)
        png = chart.render_png(points, view.alert_markers([found], str(found["payer"]), points))
    card = view.alert_card(found)
    return _page(200, "alert.html", **_common(visit), card=card, expanded=True,
                 chart=view.data_uri(png), back=f"/alerts/{quote(alert_id, safe='')}")


def alert_action(visit: _Visit, deps: DashboardDeps, alert_id: str, action: str) -> Page:
    if action not in ACTIONS:
        return _message(404, "Not found", "That is not something an alert can do.")
    note = visit.form.get("note", "")[:500] or None
    entry = {"at": visit.now.isoformat(), "by": visit.principal.actor,
             "action": action, "note": note}
    if not deps.stores.set_alert_status(visit.principal.customer_id, alert_id, ACTIONS[action],
                                        entry):
        return _message(404, "Not found", "There is no such alert for your practice.")
    return _redirect(_with_done(_safe_next(visit.form.get("next")), action))


def mark_renewed(visit: _Visit, deps: DashboardDeps, number: str) -> Page:
    if not deps.stores.set_authorization_status(visit.principal.customer_id, number, "RENEWED"):
        return _message(404, "Not found", "There is no such authorization for your practice.")
    return _redirect(_safe_next(visit.form.get("next")))


def _with_done(target: str, action: str) -> str:
    path, _, anchor = target.partition("#")
    joiner = "&" if "?" in path else "?"
    return f"{path}{joiner}done={action}" + (f"#{anchor}" if anchor else "")


Handler = Callable[..., Page]
# Sign-in pages are open (`dashboard_signin.PUBLIC`); these need a session and a level:
# (path, method, handler, level: read | write | admin, as `domain/practice/people.py` defines them).
PAGES: tuple[tuple[str, str, Handler, str], ...] = (
    ("/", "GET", overview, "read"),
    ("/alerts/<alert_id>", "GET", alert_page, "read"),
    ("/alerts/<alert_id>/evidence.csv", "GET", evidence_csv, "read"),
    ("/alerts/<alert_id>/report.pdf", "GET", alert_pdf, "read"),
    ("/alerts/<alert_id>/<action>", "POST", alert_action, "write"),
    ("/authorizations/<number>/renewed", "POST", mark_renewed, "write"),
    ("/automation/<action_id>/<verb>", "POST", automation_action, "write"),
    ("/upload", "GET", upload_page, "write"),
    ("/uploads/new", "POST", new_upload, "write"),
    ("/uploads/follow", "GET", follow, "read"),
    ("/uploads/<upload_id>", "GET", upload_summary, "read"),
    ("/uploads/<upload_id>/rejects.csv", "GET", rejects_file, "read"),
    ("/reports/monthly.csv", "GET", monthly_csv, "read"),
    ("/reports/monthly.pdf", "GET", monthly_pdf, "read"),
    ("/payers", "GET", payers_page, "read"),
    ("/payers/<payer_id>", "GET", payer_page, "read"),
    ("/check", "GET", check_page, "read"),
    ("/check", "POST", run_check, "read"),
    ("/audit", "GET", audit_page, "admin"),
    ("/settings", "GET", settings_page, "admin"),
    ("/settings/<section>", "POST", save_section, "admin"),
    ("/settings/channels/<channel_id>/test", "POST", test_channel, "admin"),
    ("/audit.csv", "GET", audit_csv, "admin"),
    ("/people", "GET", people_pages.people_page, "admin"),
    ("/people/add", "POST", people_pages.add, "admin"),
    ("/people/role", "POST", people_pages.change_role, "admin"),
    ("/people/disable", "POST", people_pages.disable, "admin"),
    ("/people/enable", "POST", people_pages.enable, "admin"),
    ("/people/invite", "POST", people_pages.reinvite, "admin"),
    ("/people/reset-2fa", "POST", people_pages.reset_authenticator, "admin"),
    ("/logout", "POST", logout, "read"),
)
_MAP = Map([Rule(path, methods=[method], endpoint=(handler, level))
            for path, method, handler, level in PAGES], strict_slashes=False)
_REFUSED_LEVEL = {"write": "Your role can look but not change anything here.",
                  "admin": "Only the practice's owners and admins can open this page."}


def handle(request: WebRequest, deps: DashboardDeps) -> Page:
    """Every page, public or signed in; an outage of what stands behind them (Firestore,
    Identity Platform) is one 503 page to retry, never a 500 or a misleading refusal."""
    try:
        return _handle(request, deps)
    except INFRASTRUCTURE as exc:
        log.warning("dashboard unavailable", extra={"error": type(exc).__name__,
                                                    "path_template": _template_of(request)})
        return _message(503, "Unavailable", "Upstream cannot reach its storage or sign-in "
                                            "service right now; try again in a moment.")


# Pages open without a session: sign-in, invitations, e-mailed links, single sign-on.
_PUBLIC = {**PUBLIC, **SSO_PAGES, **SECOND_FACTOR_PAGES}


def _template_of(request: WebRequest) -> str:
    """The route's template for the log (never the path itself: it can carry an id)."""
    try:
        (handler, _), _ = _MAP.bind("dashboard", "/").match(request.path, method=request.method)
    except (NotFound, MethodNotAllowed):
        return "public or unknown"
    return _template(handler, request.method)


def _template(handler: Handler, method: str) -> str:
    return next(p for p, m, h, _ in PAGES if h is handler and m == method)


def _handle(request: WebRequest, deps: DashboardDeps) -> Page:
    public = public_page(request, deps, _PUBLIC)
    if public is not None:
        return public
    try:
        (handler, level), args = _MAP.bind("dashboard", "/").match(request.path,
                                                                   method=request.method)
    except NotFound:
        return _message(404, "Not found", "There is no such page.")
    except MethodNotAllowed:
        return _message(405, "Not allowed", "That page cannot be used that way.")
    now = deps.clock()
    secret = deps.session_key()
    principal = signed_in_as(request, deps, secret, now)
    if principal is None:
        if request.method != "GET":
            return _message(401, "Signed out", "Your sign-in has ended. Sign in again.")
        return _redirect(next_after_sign_in(request.path))
    page = _signed_in(request, deps, handler, level, args, principal, secret, now)
    template = _template(handler, request.method)
    if not access_audit.record(
            deps.stores, principal.customer_id, at=now, actor=principal.actor,
            role=principal.role, action=f"{request.method} {template}",
            resource_path=page.audit_resource if page.audit_resource and page.status < 400
            else audit.resource(template, args if page.status < 400 else {}),
            outcome=page.status, headers=request.headers,
            client_ip=request.client_ip):
        return _message(503, "Unavailable", "Upstream cannot record this visit right now; "
                                            "try again in a moment.")
    return page


def _signed_in(request: WebRequest, deps: DashboardDeps, handler: Handler, level: str,
               args: Mapping[str, Any], principal: Principal, secret: bytes,
               now: datetime) -> Page:
    """A page or action of a valid session: every outcome is audited by `handle`."""
    if len(request.body) > MAX_FORM:
        return _message(413, "Too large", "That form was too large.")
    form = _form(request.body) if request.method == "POST" else {}
    if request.method == "POST" and not sessions.csrf_ok(secret, principal.session_seed,
                                                          form.get("csrf")):
        return _message(403, "Refused", "That form has expired. Go back, reload, try again.")
    if not principal.may(level):
        return _message(403, "Not allowed", _REFUSED_LEVEL.get(level, "Not allowed."))
    tenant = deps.stores.tenant(principal.customer_id) or {}
    visit = _Visit(request, principal, sessions.csrf_token(secret, principal.session_seed),
                   form, now, str(tenant.get("name") or principal.customer_id))
    result: Page = handler(visit, deps, **args)
    return result
