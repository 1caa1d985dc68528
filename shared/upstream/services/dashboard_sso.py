"""The single sign-on pages: `GET /login/sso?practice=` starts the round trip to the
practice's provider, `GET /login/sso/callback` finishes it into a session (the use case is
`sso_sign_in`).

The start answers a page that moves on by itself (a meta refresh, with a link) rather than a
redirect: the login form's `form-action 'self'` would stop a form's redirect to another
origin, and a link or a bookmark a practice hands its staff (`/login/sso?practice=…`) works
the same way. Starting is harmless without a session (no state is trusted until the callback
brings it back with this browser's sealed cookie), so it needs no form token.

Every refusal reads the same to the person; the reason goes to the log. A practice without
single sign-on and a practice that does not exist answer alike.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from upstream.domain.practice import sso
from upstream.domain.practice.sso import SsoError
from upstream.logs import get_logger
from upstream.services import sso_sign_in
from upstream.services.dashboard_signin import login_form, person_session
from upstream.services.tenants import CUSTOMER_ID
from upstream.services.web_pages import (
    Page,
    WebRequest,
    cookie,
    message,
    page,
    safe_next,
    set_cookie,
)

if TYPE_CHECKING:
    from upstream.services.dashboard import DashboardDeps

log = get_logger(__name__)

SSO_NONE = ("That practice does not sign in with single sign-on here. Use your e-mail and "
            "password, or an e-mailed link.")
SSO_REFUSED = ("Single sign-on did not work. Start again from the sign-in page; if it keeps "
               "failing, ask your practice's administrator.")


def _practice(text: str) -> str | None:
    text = text.strip()
    return text if re.fullmatch(CUSTOMER_ID, text) else None


def start(request: WebRequest, deps: DashboardDeps) -> Page:
    target = safe_next(request.query.get("next"))
    customer = _practice(request.query.get("practice", "")[:64])
    begun = None
    if customer is not None and deps.sso is not None:
        begun = sso_sign_in.start(deps.sso(), customer, target, deps.clock(), deps.session_key())
    if begun is None:
        log.info("single sign-on not configured for the practice asked")
        return login_form(request, deps, SSO_NONE, 404, target)
    url, sealed = begun
    return page(200, "sso_start.html", {"Set-Cookie": set_cookie(
        sso.STATE_COOKIE, sealed, request.secure, sso.STATE_MINUTES * 60, "Lax")}, url=url)


def callback(request: WebRequest, deps: DashboardDeps) -> Page:
    if deps.sso is None:
        return message(404, "Not found", "There is no such page.")
    try:
        ticket, signed = sso_sign_in.finish(deps.sso(), request.query,
                                            cookie(request.headers, sso.STATE_COOKIE),
                                            deps.clock(), deps.session_key())
    except SsoError as exc:
        log.info("single sign-on refused", extra={"reason": exc.reason})
        return message(401, "Single sign-on", SSO_REFUSED)
    done = person_session(request, deps, signed, deps.clock(), ticket.target,
                          "GET /login/sso/callback", single_sign_on=True)
    if done is None:
        log.info("single sign-on refused", extra={"reason": "session cookie refused"})
        return message(401, "Single sign-on", SSO_REFUSED)
    return done


PAGES = {("/login/sso", "GET"): start, (sso_sign_in.CALLBACK_PATH, "GET"): callback}
