"""The second step in the dashboard and the API, with in-memory people (the real run is on the
emulators): an owner's right password leads to the code, not to a session; the first visit
adds the authenticator; a wrong code, a replayed code, the fifth wrong code, a forged or
expired step, a missing form token; a session or an API token without our claim refused for a
role that needs it, and still fine for a role that does not."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.unit.test_api import NOW as API_NOW
from tests.unit.test_dashboard import FORM_TOKEN, request
from tests.unit.test_people import Identity, Toolkit, people_dashboard, person_cookie
from tests.unit.test_people_pages import ADMIN, OWNER, crew, people_page_deps, post
from upstream.adapters.identity_toolkit import SignedIn
from upstream.domain import session as sessions
from upstream.domain.practice import second_factor as factor
from upstream.domain.practice.people import PeopleError
from upstream.domain.practice.second_factor import FactorState
from upstream.services import api
from upstream.services.dashboard import DashboardDeps, handle
from upstream.services.dashboard_signin import FORM_COOKIE
from upstream.services.people import reset_authenticator
from upstream.services.second_factor_sign_in import SecondFactorDeps
from upstream.services.web_pages import Page, WebRequest

KEY = b"t" * 32


@dataclass
class Factors:
    docs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def state(self, customer_id: str, uid: str) -> FactorState:
        return FactorState.of(self.docs.get((customer_id, uid)))

    def change(self, customer_id: str, uid: str, step: Any) -> FactorState | None:
        changed: FactorState | None = step(self.state(customer_id, uid))
        if changed is not None:
            self.docs[(customer_id, uid)] = changed.to_doc()
        return changed

    def reset(self, customer_id: str, uid: str) -> None:
        self.docs.pop((customer_id, uid), None)


@dataclass
class Minted:
    """firebase-admin's custom tokens and Identity Platform's sign-in with them."""

    toolkit: Toolkit
    identity: Identity

    def custom_token(self, uid: str, claims: dict[str, Any] | None = None) -> str:
        return f"ct|{uid}|{(claims or {}).get(factor.CLAIM, '')}"

    def sign_in_with_custom_token(self, token: str) -> SignedIn:
        _, uid, how = token.split("|")
        email, (_, principal) = next((e, v) for e, v in self.toolkit.passwords.items()
                                     if v[1].uid == uid)
        self.identity.by_token[f"2fa-{uid}"] = replace(principal, second_factor=bool(how))
        return SignedIn(f"2fa-{uid}", email, uid)


def _world() -> tuple[DashboardDeps, Any, Factors, Toolkit, Identity]:
    base, stores, toolkit, identity = people_dashboard()
    factors, minted, used = Factors(), Minted(toolkit, identity), set()

    def first_use(key: str, _: Any) -> bool:
        fresh = key not in used
        used.add(key)
        return fresh

    deps = replace(base, mfa_roles=("owner", "admin"), second_factor=lambda: SecondFactorDeps(
        factors, lambda: KEY, minted, minted, first_use))
    return deps, stores, factors, toolkit, identity


def _password(deps: DashboardDeps, email: str, password: str) -> Page:
    return request(deps, "POST", "/login", form={"email": email, "password": password,
                                                 "next": "/alerts"})


def _by_link(deps: DashboardDeps, toolkit: Toolkit, email: str) -> Page:
    """The e-mailed sign-in link's page, submitted: the first factor that proves the mailbox
    (what adding an authenticator needs)."""
    code = f"link-{len(toolkit.codes)}"
    toolkit.codes[code] = email
    return request(deps, "POST", "/login/link/finish", form={
        "code": code, "email": email, "form_token": FORM_TOKEN})


def _pending_cookie(page: Page) -> str:
    match = re.match(rf"{factor.PENDING_COOKIE}=([^;]*);", page.headers.get("Set-Cookie", ""))
    assert match, page.headers
    return match.group(1)


def _second(deps: DashboardDeps, method: str, pending: str, code: str | None = None,
            token: str = FORM_TOKEN) -> Page:
    headers = {"Cookie": f"{FORM_COOKIE}={FORM_TOKEN}; {factor.PENDING_COOKIE}={pending}"}
    body = urlencode({"code": code, "form_token": token}).encode() if code is not None else b""
    return handle(WebRequest(method, "/login/2fa", {}, headers, body, False), deps)


def _code_now(deps: DashboardDeps, factors: Factors, uid: str, offset: int = 0) -> str:
    state = factors.state("acme", uid)
    nonce = state.active_nonce or state.pending_nonce
    assert nonce
    secret = factor.secret(KEY, "acme", uid, nonce)
    return factor.code_at(secret, deps.clock().timestamp() + offset * factor.STEP_SECONDS)


def _session(page: Page) -> str:
    match = re.match(rf"{sessions.COOKIE}=([^;]*);", page.headers.get("Set-Cookie", ""))
    assert match, (page.status, page.headers)
    return match.group(1)


def test_an_owner_adds_an_authenticator_then_signs_in_with_a_code() -> None:
    deps, stores, factors, toolkit, _ = _world()
    first = _by_link(deps, toolkit, "owner@acme.test")
    assert first.status == 303 and first.headers["Location"] == "/login/2fa"
    assert sessions.COOKIE not in first.headers["Set-Cookie"]  # no session yet
    pending = _pending_cookie(first)
    shown = _second(deps, "GET", pending)
    assert shown.status == 200 and 'id="totp-qr"' in shown.html and "data:image/svg+xml" in \
        shown.html
    secret_text = re.search(r'id="totp-secret">([A-Z2-7]+)<', shown.html)
    assert secret_text and _second(deps, "GET", pending).html.count(secret_text.group(1)) == 1
    uid = "uid-owner@acme.test"
    done = _second(deps, "POST", pending, _code_now(deps, factors, uid))
    assert done.status == 303 and done.headers["Location"] == "/"  # where a link lands
    cookie = _session(done)
    assert stores.audit["acme"][-1]["action"] == "POST /login/2fa"
    assert request(deps, "GET", "/", cookie).status == 200
    assert factors.state("acme", uid).enrolled
    # The next sign-in asks for a code only; the QR is never shown again.
    again = _pending_cookie(_password(deps, "owner@acme.test", "owner-password"))
    assert 'id="totp-qr"' not in _second(deps, "GET", again).html


def test_the_password_alone_never_adds_an_authenticator() -> None:
    """A stolen password must not let its holder add their own authenticator first."""
    deps, stores, factors, toolkit, _ = _world()
    pending = _pending_cookie(_password(deps, "owner@acme.test", "owner-password"))
    page = _second(deps, "GET", pending)
    assert 'id="totp-qr"' not in page.html and 'id="totp-secret"' not in page.html
    assert page.status == 403  # no mail server here: the administrator invites again
    assert factors.docs == {}
    assert _second(deps, "POST", pending, "123456").status == 400
    # An enrolment begun from a link is no help to someone with the password alone.
    linked = _pending_cookie(_by_link(deps, toolkit, "owner@acme.test"))
    _second(deps, "GET", linked)
    state = factors.state("acme", "uid-owner@acme.test")
    assert state.pending_nonce and not state.enrolled
    code = factor.code_at(factor.secret(KEY, "acme", "uid-owner@acme.test",
                                        state.pending_nonce), deps.clock().timestamp())
    assert _second(deps, "POST", pending, code).status == 400
    assert not factors.state("acme", "uid-owner@acme.test").enrolled
    assert [e["outcome"] for e in stores.audit["acme"]
            if e["action"] == "POST /login/2fa"] == [400, 400]


def test_a_biller_needs_no_code_and_a_key_session_neither() -> None:
    deps, _, _, _, _ = _world()
    page = _password(deps, "biller@acme.test", "biller-password")
    assert page.status == 303 and page.headers["Location"] == "/alerts"
    assert request(deps, "GET", "/", _session(page)).status == 200


def test_wrong_replayed_and_too_many_codes() -> None:
    deps, stores, factors, toolkit, _ = _world()
    uid = "uid-owner@acme.test"
    pending = _pending_cookie(_by_link(deps, toolkit, "owner@acme.test"))
    _second(deps, "GET", pending)  # the enrolment
    right = _code_now(deps, factors, uid)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    refused = _second(deps, "POST", pending, wrong)
    assert refused.status == 401 and "not accepted" in refused.html
    assert sessions.COOKIE not in refused.headers.get("Set-Cookie", "")
    assert _second(deps, "POST", pending, right).status == 303
    second_try = _pending_cookie(_password(deps, "owner@acme.test", "owner-password"))
    assert _second(deps, "POST", second_try, right).status == 401  # that step is used
    assert _second(deps, "POST", pending, _code_now(deps, factors, uid, 1)).status == 400
    # One failure since the success reset the count: the used code (a replay counts).
    for _ in range(factor.MAX_FAILURES - 2):
        assert _second(deps, "POST", second_try, wrong).status == 401
    locked = _second(deps, "POST", second_try, wrong)
    assert locked.status == 429 and "Too many wrong codes" in locked.html
    tried = [(e["actor"], e["role"], e["outcome"]) for e in stores.audit["acme"]
             if e["action"] == "POST /login/2fa"]
    assert tried[-1] == ("user:owner@acme.test", "owner", 429)
    assert [o for _, _, o in tried].count(401) == factor.MAX_FAILURES  # each wrong code
    assert _second(deps, "POST", second_try, _code_now(deps, factors, uid, 1)).status == 429


def test_a_forged_or_expired_step_or_a_missing_form_token_is_refused() -> None:
    deps, _, factors, toolkit, _ = _world()
    pending = _pending_cookie(_by_link(deps, toolkit, "owner@acme.test"))
    _second(deps, "GET", pending)
    code = _code_now(deps, factors, "uid-owner@acme.test")
    assert _second(deps, "POST", pending[:-3] + "abc", code).status == 400
    assert _second(deps, "GET", "junk").status == 400
    assert _second(deps, "POST", pending, code, token="other").status == 403
    late = replace(deps, clock=lambda: deps.clock() + timedelta(minutes=6))
    assert _second(late, "POST", pending, code).status == 400
    forged = factor.seal_pending(b"x" * 32, factor.Pending(
        "acme", "uid-owner@acme.test", "owner@acme.test", "/", "t"), deps.clock())
    assert _second(deps, "POST", forged, code).status == 400


def test_a_session_or_token_from_the_password_alone_is_refused_for_the_role() -> None:
    deps, _, _, _, _ = _world()
    plain = person_cookie(replace(deps, mfa_roles=()), "owner@acme.test", "owner-password")
    assert request(deps, "GET", "/", plain).status == 303  # back to the sign-in page
    calls = api.ApiDeps(stores=deps.stores, clock=deps.clock,  # type: ignore[arg-type]
                        identity=_Tokens(deps), mfa_roles=("owner", "admin"))
    owner = api.handle("GET", "/v1/alerts", {}, {"Authorization": "Bearer a.owner.c"}, b"",
                       calls)
    biller = api.handle("GET", "/v1/alerts", {}, {"Authorization": "Bearer a.biller.c"}, b"",
                        calls)
    assert (owner.status, biller.status) == (401, 200)


def test_without_the_second_step_configured_nobody_needing_it_gets_in() -> None:
    deps, _, _, _, _ = _world()
    page = _password(replace(deps, second_factor=None), "owner@acme.test", "owner-password")
    assert page.status == 503 and sessions.COOKIE not in page.headers.get("Set-Cookie", "")


class _Tokens:
    """An ID token from the password alone (no claim), for the API."""

    def __init__(self, deps: DashboardDeps) -> None:
        self.deps = deps

    def verify_id_token(self, token: str) -> Any:
        from upstream.domain.practice.people import for_user

        role = token.split(".")[1]
        return for_user("acme", f"{role}@acme.test", role, uid=f"uid-{role}@acme.test")


def test_an_authenticator_reset_is_audited_ends_sessions_and_spares_owners_from_admins() -> None:
    base, admin, log = crew()
    factors = Factors({("acme", "uid-v@acme.test"): FactorState("n").to_doc(),
                       ("acme", "uid-o@acme.test"): FactorState("m").to_doc()})
    deps = replace(base, authenticators=factors)
    done = reset_authenticator("acme", " V@acme.test", OWNER, API_NOW, deps)
    assert done["authenticator"] == "reset" and ("acme", "uid-v@acme.test") not in factors.docs
    assert admin.revoked == ["v@acme.test"]
    assert [e["action"] for _, e in log.entries] == ["user reset-2fa"]
    for email in ("o@acme.test", "nobody@acme.test", "not an address"):
        with pytest.raises(PeopleError):
            reset_authenticator("acme", email, ADMIN, API_NOW, deps)
    assert ("acme", "uid-o@acme.test") in factors.docs
    with pytest.raises(PeopleError, match="not kept"):
        reset_authenticator("acme", "v@acme.test", OWNER, API_NOW, base)


def test_the_people_page_resets_anothers_authenticator_never_ones_own() -> None:
    deps, stores, admin, _ = people_page_deps(None)
    factors = Factors({("acme", "uid-v@acme.test"): FactorState("n").to_doc()})
    made = deps.people() if deps.people else None
    assert made is not None
    deps = replace(deps, people=lambda: replace(made, authenticators=factors))
    cookie = person_cookie(deps, "owner@acme.test", "owner-password")
    assert "Reset authenticator" in request(deps, "GET", "/people", cookie).html
    done = post(deps, "/people/reset-2fa", cookie, {"email": "v@acme.test"})
    assert (done.status, done.headers.get("Location")) == (303, "/people?done=reset-2fa")
    assert factors.docs == {} and admin.revoked == ["v@acme.test"]
    assert stores.audit["acme"][-1]["resource"] == "people/v@acme.test/reset-2fa"
    mine = post(deps, "/people/reset-2fa", cookie, {"email": "owner@acme.test"})
    assert mine.status == 400 and "your own authenticator" in mine.html
