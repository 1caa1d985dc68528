"""Signing in to the dashboard (Contract 6): people with their e-mail and password (Identity
Platform), machines' API keys as before, invitations that set a first password.

A person's session is Identity Platform's own session cookie (firebase-admin mints it from the
ID token the sign-in returned, and verifies it with revocation checked on every page): a
disabled person is out on their next click. It is `SameSite=Lax` so a link from an alert
e-mail opens signed in; forms carry a CSRF token bound to the session. An API key's session
stays the signed cookie of `domain/session.py` (`SameSite=Strict`). Both live in the one
cookie, told apart by shape (a JWT has three parts, ours two).

The sign-in and invitation forms come before any session, so they carry a double-submit token
of their own: a random value in a short-lived cookie and in the form (a page on another site
can post the form but cannot set or read our cookie), which stops a login CSRF (someone
signing a victim into the attacker's account).

Every refused password, key, link or token gets one answer per form: no oracle of which
e-mail addresses exist. Successful sign-ins are audited under the practice; refusals have no
practice to file under and are logged without the address.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from upstream.adapters.identity_toolkit import SignedIn, SignInRefused
from upstream.domain import session as sessions
from upstream.domain.api_keys import allows, key_usable, parse_bearer
from upstream.domain.practice import people
from upstream.domain.practice import second_factor as factor
from upstream.domain.practice.people import Principal
from upstream.domain.practice.sso import settings_of as sso_settings_of
from upstream.logs import get_logger
from upstream.services import access_audit
from upstream.services.web_pages import (
    MAX_FORM,
    Page,
    WebRequest,
    cookie,
    form,
    message,
    page,
    redirect,
    safe_next,
    set_cookie,
)

if TYPE_CHECKING:
    from upstream.services.dashboard import DashboardDeps

log = get_logger(__name__)

FORM_COOKIE = "upstream_form"
FORM_COOKIE_SECONDS = 30 * 60
PERSON_SESSION_SECONDS = 10 * 3600  # adapters/identity.py SESSION_COOKIE_HOURS
# Identity Platform's floor is 6; a practice's staff sign in to patient-bearing pages, so the
# invitation asks for more (NIST SP 800-63B 5.1.1.2: at least 8, length over composition).
MIN_PASSWORD = 10
REFUSED = "That e-mail and password, or that access key, were not accepted."
# Identity Platform's own second factors are off (infra/identity.tf: Upstream asks for the
# authenticator code itself); an account that has one anyway is told, not let in.
MFA_NOT_YET = ("Your account has a second factor Upstream does not use. Ask your "
               "administrator for help.")
LINK_REFUSED = ("This invitation link has expired or was already used. Ask your practice's "
                "administrator to send a new one.")
SIGN_IN_LINK_SENT = ("If that address belongs to someone at a practice on Upstream, a sign-in "
                     "link is on its way. It works once, within an hour.")
SIGN_IN_LINK_REFUSED = ("This sign-in link has expired or was already used. Ask for a new one "
                        "on the sign-in page.")


SSO_REQUIRED = ("Your practice signs in through its own single sign-on. Use "
                "/login/sso?practice={practice} (the sign-in page's single sign-on button).")


def sso_required(tenant: dict[str, Any]) -> bool:
    settings = sso_settings_of(tenant)
    return settings is not None and settings.required


# The sign-ins whose first factor came through the person's mailbox.
MAILBOX_PROVEN = frozenset({"POST /welcome", "POST /login/link/finish"})


def ask_second_factor(request: WebRequest, deps: DashboardDeps, principal: Principal,
                      target: str, now: datetime, action: str) -> Page:
    """The first factor was right and the role needs a code: no session yet, only the
    sealed pending step, and on to the code (or to adding an authenticator)."""
    if deps.second_factor is None:  # fail closed: never a session without the code
        log.warning("second factor required but not configured")
        return message(503, "Unavailable", "Your practice asks for an authenticator code, "
                                           "which this deployment cannot check yet.")
    pending = factor.Pending(principal.customer_id, principal.uid,
                             principal.actor.removeprefix("user:"), target,
                             secrets.token_urlsafe(18), principal.role,
                             mailbox=action in MAILBOX_PROVEN)
    sealed = factor.seal_pending(deps.session_key(), pending, now)
    log.info("second factor asked", extra={"customer_id": principal.customer_id})
    return redirect("/login/2fa", {"Set-Cookie": set_cookie(
        factor.PENDING_COOKIE, sealed, request.secure, factor.PENDING_MINUTES * 60)})


class SessionIdentity(Protocol):
    def session_cookie(self, id_token: str) -> str | None: ...

    def verify_session_cookie(self, cookie: str) -> Principal | None: ...

    def sign_out(self, principal: Principal) -> None: ...


class SignIn(Protocol):
    def sign_in_with_password(self, email: str, password: str) -> SignedIn: ...

    def sign_in_with_email_link(self, email: str, code: str) -> SignedIn: ...

    def accept_invitation(self, code: str, password: str) -> str: ...


def signed_in_as(request: WebRequest, deps: DashboardDeps, secret: bytes,
                 now: datetime) -> Principal | None:
    value = cookie(request.headers, sessions.COOKIE)
    if not value or len(value) > 8192:
        return None
    if value.count(".") == 2:  # a person's Identity Platform session cookie
        person = deps.identity.verify_session_cookie(value) if deps.identity else None
        if person is None:
            return None
        # A role that needs a second factor needs a session made through it.
        tenant = deps.stores.tenant(person.customer_id) or {}
        return person if factor.satisfied(person, tenant, deps.mfa_roles) else None
    session = sessions.verify(secret, value, now)
    stored = deps.stores.key(session.key_id) if session else None
    if session is None or stored is None or not key_usable(stored, now) \
            or str(stored.get("customer_id")) != session.customer_id:
        return None
    machine = people.for_key(session.customer_id, session.key_id, list(session.scopes),
                             session.nonce)
    # The audit tells a key's dashboard session from the same key on the API.
    return Principal(machine.customer_id, f"dashboard:{session.key_id}", machine.role,
                     machine.levels, machine.session_seed)


def form_token(request: WebRequest) -> tuple[str, dict[str, str]]:
    """The pre-session double-submit token: the one in the cookie, or a new one to set."""
    existing = cookie(request.headers, FORM_COOKIE)
    if existing and 16 <= len(existing) <= 64:
        return existing, {}
    token = secrets.token_urlsafe(24)
    return token, {"Set-Cookie": set_cookie(FORM_COOKIE, token, request.secure,
                                            FORM_COOKIE_SECONDS)}


def form_ok(request: WebRequest, submitted: dict[str, str]) -> bool:
    expected = cookie(request.headers, FORM_COOKIE) or ""
    given = submitted.get("form_token", "")
    return bool(expected) and hmac.compare_digest(expected.encode(),
                                                  given.encode("utf-8", "replace"))


def login_form(request: WebRequest, deps: DashboardDeps, error: str | None = None,
               status: int = 200, target: str | None = None) -> Page:
    token, extra = form_token(request)
    return page(status, "login.html", extra, error=error, form_token=token,
                next=target or safe_next(request.query.get("next")),
                people=deps.identity is not None)


def _session_headers(value: str, secure: bool, person: bool) -> dict[str, str]:
    if person:
        return {"Set-Cookie": set_cookie(sessions.COOKIE, value, secure, PERSON_SESSION_SECONDS,
                                         "Lax")}
    return {"Set-Cookie": set_cookie(sessions.COOKIE, value, secure,
                                     sessions.SESSION_HOURS * 3600)}


def _audit_sign_in(request: WebRequest, deps: DashboardDeps, principal: Principal,
                   now: datetime, action: str) -> bool:
    return access_audit.record(deps.stores, principal.customer_id, at=now,
                               actor=principal.actor, role=principal.role, action=action,
                               resource_path="session", outcome=303, headers=request.headers,
                               client_ip=request.client_ip)


def person_session(request: WebRequest, deps: DashboardDeps, signed: SignedIn, now: datetime,
                   target: str, action: str, single_sign_on: bool = False) -> Page | None:
    """The session cookie for a fresh ID token, audited; None if it is refused. A practice
    that requires single sign-on gets no session from a password or an e-mailed link (said
    only after the right password or link: no oracle)."""
    if deps.identity is None:
        return None
    value = deps.identity.session_cookie(signed.id_token)
    principal = deps.identity.verify_session_cookie(value) if value else None
    if value is None or principal is None:
        return None
    tenant = deps.stores.tenant(principal.customer_id) or {}
    if not single_sign_on and sso_required(tenant):
        log.info("person sign-in refused", extra={"reason": "practice requires sso"})
        return message(403, "Single sign-on", SSO_REQUIRED.format(
            practice=quote(principal.customer_id)))
    if not factor.satisfied(principal, tenant, deps.mfa_roles):
        return ask_second_factor(request, deps, principal, target, now, action)
    if not _audit_sign_in(request, deps, principal, now, action):
        return message(503, "Unavailable", "Upstream cannot record this sign-in right now; "
                                           "try again in a moment.")
    log.info("dashboard sign-in", extra={"customer_id": principal.customer_id,
                                         "kind": "person"})
    return redirect(target, _session_headers(value, request.secure, person=True))


def login(request: WebRequest, deps: DashboardDeps) -> Page:
    submitted = form(request.body)
    target = safe_next(submitted.get("next"))
    if not form_ok(request, submitted):
        return login_form(request, deps, "That form had expired; sign in again.", 403, target)
    now = deps.clock()
    if submitted.get("email"):
        found = _password(request, deps, submitted, now, target)
        if found is not None:
            return found
    elif submitted.get("key"):
        found = _key(request, deps, submitted["key"], now, target)
        if found is not None:
            return found
    log.info("dashboard sign-in refused")
    return login_form(request, deps, REFUSED, 401, target)


def _password(request: WebRequest, deps: DashboardDeps, submitted: dict[str, str],
              now: datetime, target: str) -> Page | None:
    if deps.sign_in is None:
        return None
    try:
        email = people.normalise_email(submitted.get("email", ""))
        signed = deps.sign_in().sign_in_with_password(email, submitted.get("password", ""))
    except (people.PeopleError, SignInRefused) as exc:
        reason = getattr(exc, "reason", "not an e-mail address")
        log.info("person sign-in refused", extra={"reason": reason})
        if reason == "MFA_REQUIRED":  # only after the right password: no oracle
            return login_form(request, deps, MFA_NOT_YET, 401, target)
        return None
    return person_session(request, deps, signed, now, target, "POST /login")


def _key(request: WebRequest, deps: DashboardDeps, key_text: str, now: datetime,
         target: str) -> Page | None:
    parsed = parse_bearer("Bearer " + key_text.strip())
    stored = deps.stores.key(parsed[0]) if parsed else None
    if parsed is None or stored is None or allows(stored, parsed[1], "read", now) != "ok":
        return None
    value, session = sessions.issue(deps.session_key(), str(stored["customer_id"]), parsed[0],
                                    list(stored.get("scopes") or []), now)
    principal = people.for_key(session.customer_id, session.key_id, list(session.scopes))
    machine = Principal(principal.customer_id, f"dashboard:{session.key_id}", principal.role,
                        principal.levels)
    if not _audit_sign_in(request, deps, machine, now, "POST /login"):
        return message(503, "Unavailable", "Upstream cannot record this sign-in right now; "
                                           "try again in a moment.")
    log.info("dashboard sign-in", extra={"customer_id": session.customer_id, "kind": "key",
                                         "key_id": session.key_id})
    return redirect(target, _session_headers(value, request.secure, person=False))


def welcome_form(request: WebRequest, deps: DashboardDeps, error: str | None = None,
                 status: int = 200, code: str | None = None) -> Page:
    token, extra = form_token(request)
    code = code if code is not None else request.query.get("code", "")[:512]
    if not code:
        return message(400, "Invitation", LINK_REFUSED)
    return page(status, "welcome.html", extra, error=error, code=code, form_token=token,
                min_password=MIN_PASSWORD)


def welcome(request: WebRequest, deps: DashboardDeps) -> Page:
    """An invitation's link: choose the first password, then signed in."""
    submitted = form(request.body)
    code = submitted.get("code", "")[:512]
    if not code or deps.sign_in is None:
        return message(400, "Invitation", LINK_REFUSED)
    if not form_ok(request, submitted):
        return welcome_form(request, deps, "That form had expired; try again.", 403, code)
    password = submitted.get("password", "")
    if len(password) < MIN_PASSWORD or len(password) > 128:
        return welcome_form(request, deps, f"Choose a password of {MIN_PASSWORD} to 128 "
                                           "characters.", 400, code)
    if password != submitted.get("confirm", ""):
        return welcome_form(request, deps, "The two passwords differ.", 400, code)
    client = deps.sign_in()
    try:
        email = client.accept_invitation(code, password)
        signed = client.sign_in_with_password(email, password)
    except SignInRefused as exc:
        log.info("invitation refused", extra={"reason": exc.reason})
        return message(400, "Invitation", LINK_REFUSED)
    done = person_session(request, deps, signed, deps.clock(), "/", "POST /welcome")
    return done or message(400, "Invitation", LINK_REFUSED)


def request_link(request: WebRequest, deps: DashboardDeps) -> Page:
    """`POST /login/link`: e-mail a one-time sign-in link. The same answer whatever the
    address (see `people.send_sign_in_link`)."""
    from upstream.services.people import Actor, send_sign_in_link

    submitted = form(request.body)
    if not form_ok(request, submitted):
        return login_form(request, deps, "That form had expired; try again.", 403)
    if deps.people is not None and deps.link_window is not None:
        send_sign_in_link(submitted.get("email", ""),
                          Actor("anonymous", "", request.client_ip,
                                request.headers.get("User-Agent")),
                          deps.clock(), deps.people(), deps.link_window)
    return message(200, "Check your e-mail", SIGN_IN_LINK_SENT)


def link_form(request: WebRequest, deps: DashboardDeps) -> Page:
    """`GET /login/link/finish`: the e-mailed link lands here and asks for one click, so a
    mail scanner opening the link (a GET) does not spend its one use."""
    token, extra = form_token(request)
    code, email = request.query.get("code", "")[:512], request.query.get("email", "")[:254]
    if not code or not email:
        return message(400, "Sign-in link", SIGN_IN_LINK_REFUSED)
    return page(200, "link_sign_in.html", extra, code=code, email=email, form_token=token)


def finish_link(request: WebRequest, deps: DashboardDeps) -> Page:
    """`POST /login/link/finish`: the code and its address → a session, audited."""
    submitted = form(request.body)
    code = submitted.get("code", "")[:512]
    if not form_ok(request, submitted):
        return message(403, "Sign-in link", "That form had expired; open the link again.")
    if not code or deps.sign_in is None:
        return message(400, "Sign-in link", SIGN_IN_LINK_REFUSED)
    try:
        email = people.normalise_email(submitted.get("email", ""))
        signed = deps.sign_in().sign_in_with_email_link(email, code)
    except (people.PeopleError, SignInRefused) as exc:
        log.info("sign-in link refused", extra={"reason": getattr(exc, "reason", "address")})
        if getattr(exc, "reason", "") == "MFA_REQUIRED":
            return message(401, "Sign-in link", MFA_NOT_YET)
        return message(400, "Sign-in link", SIGN_IN_LINK_REFUSED)
    done = person_session(request, deps, signed, deps.clock(), "/", "POST /login/link/finish")
    return done or message(400, "Sign-in link", SIGN_IN_LINK_REFUSED)


def sign_out(principal: Principal, request: WebRequest, deps: DashboardDeps) -> Page:
    """A person's sign-out revokes their sessions everywhere (a cookie copied off a shared
    front-desk PC dies with it); a key's session just drops its cookie."""
    if principal.is_person and deps.identity is not None:
        deps.identity.sign_out(principal)
    return redirect("/login", {"Set-Cookie": set_cookie(sessions.COOKIE, "", request.secure, 0)})


PublicPage = Callable[[WebRequest, "DashboardDeps"], Page]
PUBLIC: dict[tuple[str, str], PublicPage] = {
    ("/login", "GET"): login_form, ("/login", "POST"): login,
    ("/welcome", "GET"): welcome_form, ("/welcome", "POST"): welcome,
    ("/login/link", "POST"): request_link, ("/login/link/finish", "GET"): link_form,
    ("/login/link/finish", "POST"): finish_link}


def public_page(request: WebRequest, deps: DashboardDeps,
                table: dict[tuple[str, str], PublicPage] = PUBLIC) -> Page | None:
    handler = table.get((request.path.rstrip("/") or "/", request.method))
    if handler is None:
        return None
    if len(request.body) > MAX_FORM:
        return message(413, "Too large", "That form was too large.")
    return handler(request, deps)


def next_after_sign_in(path: str) -> str:
    return "/login?next=" + quote(safe_next(path), safe="/")

