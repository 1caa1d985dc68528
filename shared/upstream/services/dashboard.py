"""The dashboard, served by the `api` function beside `/v1/…`: server-rendered pages, forms
that post and redirect (no script, no build chain).

Sign-in trades an API key for a signed session cookie (`domain/session.py`): HttpOnly,
SameSite=Strict, Secure over HTTPS. Every page looks the key up again (a revoked or expired
key ends its sessions), reads only under the key's tenant, and every form carries a CSRF
token. Pages answer with a strict Content-Security-Policy (no script; the one style block
carries a nonce; charts are inline PNGs) and are never cached.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.cookies import CookieError, SimpleCookie
from typing import Any, Protocol
from urllib.parse import parse_qs, quote

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule

from upstream.domain import audit
from upstream.domain import dashboard as view
from upstream.domain import session as sessions
from upstream.domain.api_keys import allows, key_usable, parse_bearer
from upstream.domain.notify import chart
from upstream.logs import get_logger
from upstream.services import access_audit
from upstream.services.api import ACTIONS, ApiStores
from upstream.services.automation import (
    AutomationDeps,
    AutomationRefused,
    approve,
    override_hold,
)
from upstream.web import render

log = get_logger(__name__)

MAX_FORM = 16 * 1024
ALERT_STATUSES = ("open", "acknowledged", "noise", "resolved")
STATUS_LABELS = {"open": "Open", "acknowledged": "Acknowledged — being worked",
                 "noise": "Marked noise", "resolved": "Resolved"}
ACTION_LABELS = {"acknowledge": "Acknowledge", "noise": "Not useful (noise)",
                 "resolve": "Mark resolved", "reopen": "Reopen"}
DONE = {"acknowledge": "Acknowledged", "noise": "Marked as noise: the same finding will stay "
        "quiet unless it gets worse", "resolve": "Marked resolved", "reopen": "Reopened",
        "approve": "Approved and done", "release-hold": "Hold released; your reason is logged"}


class DashboardStores(ApiStores, Protocol):
    def failed_deliveries(self, customer: str, limit: int) -> list[dict[str, Any]]: ...

    def last_run_day(self, customer: str) -> date | None: ...


@dataclass(frozen=True, slots=True)
class DashboardDeps:
    stores: DashboardStores
    session_key: Callable[[], bytes]
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    automation: AutomationDeps | None = None


@dataclass(frozen=True, slots=True)
class WebRequest:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    secure: bool  # HTTPS: the cookie gets `Secure`


@dataclass(frozen=True, slots=True)
class Page:
    status: int
    html: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Visit:
    """A signed-in request: its session, its CSRF token, its form."""

    request: WebRequest
    session: sessions.Session
    csrf: str
    form: dict[str, str]
    now: datetime
    practice: str


def _headers(nonce: str) -> dict[str, str]:
    return {"Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": (
                f"default-src 'none'; style-src 'nonce-{nonce}'; img-src data:; "
                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store", "X-Frame-Options": "DENY"}


def _page(status: int, template: str, extra: dict[str, str] | None = None,
          **context: Any) -> Page:
    nonce = secrets.token_urlsafe(12)
    return Page(status, render(template, nonce=nonce, **context),
                {**_headers(nonce), **(extra or {})})


def _message(status: int, heading: str, message: str) -> Page:
    return _page(status, "message.html", heading=heading, message=message)


def _redirect(location: str, extra: dict[str, str] | None = None) -> Page:
    return Page(303, "", {"Location": location, "Cache-Control": "no-store", **(extra or {})})


def _safe_next(value: str | None) -> str:
    """Only a path on this site: never `//evil.example` or a scheme (an open redirect)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")) \
            or any(c in value for c in "\r\n\t") or len(value) > 300:
        return "/"
    return value


def _form(body: bytes) -> dict[str, str]:
    try:
        parsed = parse_qs(body.decode("utf-8"), max_num_fields=20, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {k: v[0] for k, v in parsed.items() if v}


def _cookie(headers: Mapping[str, str]) -> str | None:
    raw = next((v for k, v in headers.items() if k.lower() == "cookie"), "")
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(sessions.COOKIE)
    return morsel.value if morsel else None


def _set_cookie(value: str, secure: bool, max_age: int) -> dict[str, str]:
    flags = f"Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}"
    return {"Set-Cookie": f"{sessions.COOKIE}={value}; {flags}{'; Secure' if secure else ''}"}


# --- pages -----------------------------------------------------------------------------------

def login_form(request: WebRequest, deps: DashboardDeps) -> Page:
    return _page(200, "login.html", error=None, next=_safe_next(request.query.get("next")))


def login(request: WebRequest, deps: DashboardDeps) -> Page:
    """One answer for every refused key (unknown, wrong, revoked, expired): no oracle."""
    form = _form(request.body)
    target = _safe_next(form.get("next"))
    parsed = parse_bearer("Bearer " + form.get("key", "").strip())
    now = deps.clock()
    stored = deps.stores.key(parsed[0]) if parsed else None
    if parsed is None or stored is None or allows(stored, parsed[1], "read", now) != "ok":
        log.info("dashboard sign-in refused")
        return _page(401, "login.html", error="That access key was not accepted.", next=target)
    cookie, session = sessions.issue(deps.session_key(), str(stored["customer_id"]), parsed[0],
                                     list(stored.get("scopes") or []), now)
    log.info("dashboard sign-in", extra={"customer_id": session.customer_id,
                                         "key_id": session.key_id})
    return _redirect(target, _set_cookie(cookie, request.secure,
                                         sessions.SESSION_HOURS * 3600))


def logout(visit: _Visit, deps: DashboardDeps) -> Page:
    return _redirect("/login", _set_cookie("", visit.request.secure, 0))


def _common(visit: _Visit) -> dict[str, Any]:
    return {"practice": visit.practice, "csrf": visit.csrf, "can_write": visit.session.can_write,
            "labels": {"status": STATUS_LABELS, "action": ACTION_LABELS},
            "flash": DONE.get(visit.request.query.get("done", ""))}


def _as_of(visit: _Visit, deps: DashboardDeps) -> date:
    asked = visit.request.query.get("as_of")
    if asked:
        try:
            return date.fromisoformat(asked)
        except ValueError:
            pass
    return view.as_of_day(deps.stores.last_run_day(visit.session.customer_id),
                          visit.now.date())


def overview(visit: _Visit, deps: DashboardDeps) -> Page:
    customer, stores = visit.session.customer_id, deps.stores
    as_of = _as_of(visit, deps)
    by_status = {status: stores.alert_page(customer, {"status": status}, 200, None)[0]
                 for status in ALERT_STATUSES}
    everything = [a for found in by_status.values() for a in found]
    cells = stores.cells(customer, as_of - timedelta(days=7 * chart.WEEKS), as_of)
    calendar = view.auth_calendar(stores.authorizations(customer), as_of)
    soon = sum(len(g.rows) for g in calendar if g.ending_soon)
    return _page(200, "dashboard.html", **_common(visit), as_of=as_of.isoformat(),
                 counts=view.counts(by_status),
                 open_alerts=view.order_alerts(by_status["open"]),
                 worked_alerts=view.order_alerts(by_status["acknowledged"]),
                 trends=view.payer_trends(cells, everything, as_of), calendar=calendar,
                 calendar_soon=soon, calendar_rows=sum(len(g.rows) for g in calendar),
                 uploads=view.upload_rows(stores.uploads(customer, 10)),
                 problems=view.delivery_problems(stores.failed_deliveries(customer, 20)),
                 decisions=_decisions(customer, deps), back="/#alerts")


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
    by = f"dashboard:{visit.session.key_id}"
    try:
        if verb == "approve":
            approve(visit.session.customer_id, action_id, by, visit.form.get("note"),
                    deps.automation)
        else:
            override_hold(visit.session.customer_id, action_id, by,
                          visit.form.get("justification", ""), deps.automation)
    except KeyError:
        return _message(404, "Not found", "There is no such action for your practice.")
    except AutomationRefused as exc:
        return _message(409, "Not done", str(exc))
    return _redirect(_with_done("/#decisions", verb))


def alert_page(visit: _Visit, deps: DashboardDeps, alert_id: str) -> Page:
    customer = visit.session.customer_id
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
    entry = {"at": visit.now.isoformat(), "by": f"dashboard:{visit.session.key_id}",
             "action": action, "note": note}
    if not deps.stores.set_alert_status(visit.session.customer_id, alert_id, ACTIONS[action],
                                        entry):
        return _message(404, "Not found", "There is no such alert for your practice.")
    return _redirect(_with_done(_safe_next(visit.form.get("next")), action))


def mark_renewed(visit: _Visit, deps: DashboardDeps, number: str) -> Page:
    if not deps.stores.set_authorization_status(visit.session.customer_id, number, "RENEWED"):
        return _message(404, "Not found", "There is no such authorization for your practice.")
    return _redirect(_safe_next(visit.form.get("next")))


def _with_done(target: str, action: str) -> str:
    path, _, anchor = target.partition("#")
    joiner = "&" if "?" in path else "?"
    return f"{path}{joiner}done={action}" + (f"#{anchor}" if anchor else "")


Handler = Callable[..., Page]
# Sign-in pages are open; (path, method, handler, needs write) need a session.
_PUBLIC: dict[tuple[str, str], Callable[[WebRequest, DashboardDeps], Page]] = {
    ("/login", "GET"): login_form, ("/login", "POST"): login}
PAGES: tuple[tuple[str, str, Handler, bool], ...] = (
    ("/", "GET", overview, False),
    ("/alerts/<alert_id>", "GET", alert_page, False),
    ("/alerts/<alert_id>/<action>", "POST", alert_action, True),
    ("/authorizations/<number>/renewed", "POST", mark_renewed, True),
    ("/automation/<action_id>/<verb>", "POST", automation_action, True),
    ("/logout", "POST", logout, False),
)
_MAP = Map([Rule(path, methods=[method], endpoint=(handler, write))
            for path, method, handler, write in PAGES], strict_slashes=False)


def handle(request: WebRequest, deps: DashboardDeps) -> Page:
    public = _PUBLIC.get((request.path.rstrip("/") or "/", request.method))
    if public is not None:
        if len(request.body) > MAX_FORM:
            return _message(413, "Too large", "That form was too large.")
        return public(request, deps)
    try:
        (handler, write), args = _MAP.bind("dashboard", "/").match(request.path,
                                                                   method=request.method)
    except NotFound:
        return _message(404, "Not found", "There is no such page.")
    except MethodNotAllowed:
        return _message(405, "Not allowed", "That page cannot be used that way.")
    now = deps.clock()
    secret = deps.session_key()
    session = sessions.verify(secret, _cookie(request.headers), now)
    stored = deps.stores.key(session.key_id) if session else None
    if session is None or stored is None or not key_usable(stored, now) \
            or str(stored.get("customer_id")) != session.customer_id:
        if request.method != "GET":
            return _message(401, "Signed out", "Your sign-in has ended. Sign in again.")
        return _redirect("/login?next=" + quote(_safe_next(request.path), safe="/"))
    page = _signed_in(request, deps, handler, write, args, session, secret, now)
    template = next(p for p, m, h, _ in PAGES if h is handler and m == request.method)
    if not access_audit.record(
            deps.stores, session.customer_id, at=now, actor=f"dashboard:{session.key_id}",
            role="write" if session.can_write else "read",
            action=f"{request.method} {template}",
            resource_path=audit.resource(template, args if page.status < 400 else {}),
            outcome=page.status, headers=request.headers, client_ip=None):
        return _message(503, "Unavailable", "Upstream cannot record this visit right now; "
                                            "try again in a moment.")
    return page


def _signed_in(request: WebRequest, deps: DashboardDeps, handler: Handler, write: bool,
               args: Mapping[str, Any], session: Any, secret: bytes, now: datetime) -> Page:
    """A page or action of a valid session: every outcome is audited by `handle`."""
    if len(request.body) > MAX_FORM:
        return _message(413, "Too large", "That form was too large.")
    form = _form(request.body) if request.method == "POST" else {}
    if request.method == "POST" and not sessions.csrf_ok(secret, session, form.get("csrf")):
        return _message(403, "Refused", "That form has expired. Go back, reload, try again.")
    if write and not session.can_write:
        return _message(403, "Read only", "This access key can look but not change anything.")
    tenant = deps.stores.tenant(session.customer_id) or {}
    visit = _Visit(request, session, sessions.csrf_token(secret, session), form, now,
                   str(tenant.get("name") or session.customer_id))
    result: Page = handler(visit, deps, **args)
    return result
