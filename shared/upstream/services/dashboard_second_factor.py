"""The second step's pages: `GET /login/2fa` (the code form, or once the new authenticator
to add, as a QR code and a typed key) and `POST /login/2fa` (the code → the session). The
first factor's success reaches here only as the sealed pending cookie
(`dashboard_signin.ask_second_factor`), good for five minutes.

Answers: a wrong code is the form again with one message (401); the fifth in a row locks for
fifteen minutes (429, said so); an expired or forged pending cookie sends the person back to
the sign-in page. Nothing here tells whether an address has an account.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import segno

from upstream.domain.practice import second_factor as factor
from upstream.logs import get_logger
from upstream.services import access_audit
from upstream.services import second_factor_sign_in as step
from upstream.services.dashboard_signin import form_ok, form_token, person_session
from upstream.services.web_pages import Page, WebRequest, cookie, form, message, page

if TYPE_CHECKING:
    from upstream.services.dashboard import DashboardDeps

log = get_logger(__name__)

EXPIRED = "That sign-in step has expired. Sign in again."
WRONG = "That code was not accepted. Type the six digits your app shows now."
ENROL_BY_LINK = ("Your practice asks for a code from an authenticator app, which you add once "
                 "from a sign-in link: we have e-mailed one to you (it works once, within an "
                 "hour). If it does not arrive, ask for a new one in ten minutes.")
LOCKED = (f"Too many wrong codes. Wait {factor.LOCK_MINUTES} minutes, or ask your practice's "
          "administrator to reset your authenticator.")


def _pending(request: WebRequest, deps: DashboardDeps) -> factor.Pending | None:
    return factor.open_pending(deps.session_key(), cookie(request.headers,
                                                          factor.PENDING_COOKIE), deps.clock())


def _form(request: WebRequest, deps: DashboardDeps, pending: factor.Pending,
          error: str | None = None, status: int = 200) -> Page:
    assert deps.second_factor is not None
    token, extra = form_token(request)
    try:
        enrolment = step.enrolment(deps.second_factor(), pending)
    except step.SecondFactorRefused:  # no authenticator yet, and only the password given
        return _enrol_by_link(request, deps, pending)
    qr = segno.make(enrolment.uri, error="m").svg_data_uri(scale=5) if enrolment else None
    return page(status, "second_factor.html", extra, error=error, enrolment=enrolment, qr=qr,
                email=pending.email, form_token=token)


def code_form(request: WebRequest, deps: DashboardDeps) -> Page:
    pending = _pending(request, deps)
    if pending is None or deps.second_factor is None:
        return message(400, "Sign in", EXPIRED)
    return _form(request, deps, pending)


def submit(request: WebRequest, deps: DashboardDeps) -> Page:
    submitted = form(request.body)
    pending = _pending(request, deps)
    if pending is None or deps.second_factor is None:
        return message(400, "Sign in", EXPIRED)
    if not form_ok(request, submitted):
        return _form(request, deps, pending, "That form had expired; type the code again.", 403)
    now = deps.clock()
    try:
        signed = step.verify(deps.second_factor(), pending, submitted.get("code", "")[:16], now)
    except step.SecondFactorRefused as exc:
        log.info("second factor refused", extra={"reason": exc.reason,
                                                 "customer_id": pending.customer_id})
        if exc.reason == "locked":
            refused = message(429, "Sign in", LOCKED)
        elif exc.reason.startswith("sign-in refused") or exc.reason in (
                "pending used", "not enrolled", "enrol by link"):
            refused = message(400, "Sign in", EXPIRED)
        else:
            refused = _form(request, deps, pending, WRONG, 401)
        return refused if _audit_refusal(request, deps, pending, refused.status, now) \
            else message(503, "Unavailable", "Upstream cannot record this sign-in right now; "
                                             "try again in a moment.")
    done = person_session(request, deps, signed, now, pending.target, "POST /login/2fa")
    return done or message(400, "Sign in", EXPIRED)


def _audit_refusal(request: WebRequest, deps: DashboardDeps, pending: factor.Pending,
                   status: int, now: datetime) -> bool:
    """Each refused code is on the practice's audit (who, when, from where, which answer):
    an owner sees someone trying codes against a person's account. A success is audited
    with the session it makes (`person_session`)."""
    return access_audit.record(deps.stores, pending.customer_id, at=now,
                               actor=f"user:{pending.email}", role=pending.role,
                               action="POST /login/2fa", resource_path="session",
                               outcome=status, headers=request.headers,
                               client_ip=request.client_ip)


def _enrol_by_link(request: WebRequest, deps: DashboardDeps, pending: factor.Pending) -> Page:
    """The password was right, but adding an authenticator needs the mailbox too: the
    e-mailed sign-in link (one per address per window, like the sign-in page's) leads back
    here with the right to add one."""
    from upstream.services.people import Actor, send_sign_in_link

    if deps.people is not None and deps.link_window is not None:
        send_sign_in_link(pending.email, Actor(f"user:{pending.email}", pending.role,
                                               request.client_ip,
                                               request.headers.get("User-Agent")),
                          deps.clock(), deps.people(), deps.link_window)
        return message(200, "Check your e-mail", ENROL_BY_LINK)
    return message(403, "Sign in", "Ask your practice's administrator to invite you again: "
                                   "your authenticator is added from an e-mailed link.")


PAGES = {("/login/2fa", "GET"): code_form, ("/login/2fa", "POST"): submit}
