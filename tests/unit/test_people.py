"""People (Contract 6) without servers: roles and levels, the API with people's tokens, the
dashboard's person sign-in, invitations and the audit page. The same against the real Auth
emulator: tests/integration/test_people_on_emulators.py."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.test_api import NOW, setup
from tests.unit.test_dashboard import FORM_TOKEN, deps_and_tokens, request
from upstream.adapters.identity_toolkit import SignedIn, SignInRefused
from upstream.domain import session as sessions
from upstream.domain.practice import people
from upstream.domain.practice.people import PeopleError, Principal
from upstream.services import api
from upstream.services.api_auth import MAX_TOKEN, authenticate
from upstream.services.dashboard import DashboardDeps, handle
from upstream.services.people import Actor, PeopleDeps, add_person, disable_person, list_people
from upstream.services.web_pages import WebRequest
from upstream.services.webhooks import Answer

HOSTILE = "<script>alert('x')</script>"


# --- roles and levels ----------------------------------------------------------------------

def test_roles_map_to_levels_and_keys_keep_what_they_could_do() -> None:
    assert people.for_user("acme", "v@x.test", "viewer").levels == {"read"}
    assert people.for_user("acme", "b@x.test", "biller").levels == {"read", "write"}
    for role in ("admin", "owner"):
        assert people.for_user("acme", "a@x.test", role).may("admin")
    assert people.for_user("acme", "x@x.test", "superuser").levels == frozenset()
    assert people.for_key("acme", "k1", ["read", "write"]).may("admin")
    assert people.for_key("acme", "k1", ["read"]).levels == {"read"}
    assert people.for_key("acme", "k1", []).levels == frozenset()


def test_claims_without_a_practice_or_a_known_role_are_nobody() -> None:
    good = {**people.claims("acme", "biller"), "email": "B@X.test", "sub": "u1"}
    found = people.from_claims(good)
    assert found and found.actor == "user:b@x.test" and found.uid == "u1"
    for bad in ({**good, people.CLAIM_ROLE: "root"}, {**good, people.CLAIM_CUSTOMER: ""},
                {k: v for k, v in good.items() if k != "email"}, {"email": "a@b.test"},
                {**good, people.CLAIM_CUSTOMER: ["acme"]}):
        assert people.from_claims(bad) is None


@given(st.text(max_size=300))
def test_any_text_is_an_address_or_a_clear_refusal(text: str) -> None:
    try:
        email = people.normalise_email(text)
    except PeopleError:
        return
    assert email == email.strip().lower() and len(email) <= people.MAX_EMAIL
    assert "<" not in email and " " not in email and "\n" not in email


def test_the_last_active_owner_cannot_be_disabled() -> None:
    crew = [{"email": "o@x.test", "role": "owner", "disabled": False},
            {"email": "o2@x.test", "role": "owner", "disabled": True},
            {"email": "v@x.test", "role": "viewer", "disabled": False}]
    with pytest.raises(PeopleError):
        people.check_not_last_owner(crew, "o@x.test")
    people.check_not_last_owner(crew, "v@x.test")
    people.check_not_last_owner([*crew, {"email": "o3@x.test", "role": "owner"}], "o@x.test")


# --- the JSON API with people's tokens -----------------------------------------------------

class Tokens:
    """A verifier as firebase-admin would answer: token text → principal."""

    def __init__(self) -> None:
        self.known: dict[str, Principal] = {}
        self.seen: list[str] = []

    def add(self, customer: str, email: str, role: str) -> str:
        token = f"h.{email.replace('.', '_')}.s"
        self.known[token] = people.for_user(customer, email, role)
        return token

    def verify_id_token(self, token: str) -> Principal | None:
        self.seen.append(token)
        return self.known.get(token)


def _call(deps: api.ApiDeps, method: str, path: str, token: str,
          body: bytes = b"") -> Answer:
    return api.handle(method, path, {}, {"Authorization": f"Bearer {token}"}, body, deps)


def test_people_call_the_api_with_their_role_and_are_audited_as_themselves() -> None:
    base, stores, _ = setup()
    tokens = Tokens()
    deps = api.ApiDeps(stores=base.stores, clock=lambda: NOW, identity=tokens)
    viewer = tokens.add("acme", "v@acme.test", "viewer")
    biller = tokens.add("acme", "b@acme.test", "biller")
    admin = tokens.add("acme", "a@acme.test", "admin")
    assert _call(deps, "GET", "/v1/alerts", viewer).status == 200
    refused = _call(deps, "POST", "/v1/alerts/a1/acknowledge", viewer)
    assert refused.status == 403
    entry = stores.audit["acme"][-1]
    assert (entry["actor"], entry["role"], entry["outcome"]) == ("user:v@acme.test", "viewer",
                                                                 403)
    assert _call(deps, "POST", "/v1/alerts/a1/acknowledge", biller).status == 200
    assert stores.alerts["acme"]["a1"]["history"][-1]["by"] == "user:b@acme.test"
    assert _call(deps, "GET", "/v1/audit", biller).status == 403
    assert _call(deps, "PUT", "/v1/settings", biller, b'{"payer_aliases": {}}').status == 403
    assert _call(deps, "GET", "/v1/audit", admin).status == 200


def test_a_token_only_ever_opens_its_own_practice_and_bad_tokens_are_401() -> None:
    base, stores, _ = setup()
    tokens = Tokens()
    deps = api.ApiDeps(stores=base.stores, clock=lambda: NOW, identity=tokens)
    beta = tokens.add("beta", "o@beta.test", "owner")
    assert _call(deps, "GET", "/v1/alerts/a1", beta).status == 404  # acme's alert
    assert stores.audit["beta"][-1]["resource"] == "/v1/alerts/<alert_id>"
    before = {k: len(v) for k, v in stores.audit.items()}
    for bad in ("h.nobody.s", "a.b", "x" * 10, "h." + "a" * MAX_TOKEN + ".s", "h.é.s",
                "h.v@acme.test.s.extra"):
        assert _call(deps, "GET", "/v1/alerts", bad).status == 401
    assert {k: len(v) for k, v in stores.audit.items()} == before
    assert all(len(t) <= MAX_TOKEN and t.isascii() for t in tokens.seen)
    keyless = api.ApiDeps(stores=base.stores, clock=lambda: NOW)  # no identity configured
    assert _call(keyless, "GET", "/v1/alerts", beta).status == 401


def test_keys_still_work_beside_people() -> None:
    base, _, keys = setup()
    assert authenticate({"authorization": f"BEARER {keys['write']}"}, base.stores, None,
                        NOW) is not None
    assert authenticate({"Authorization": f"Bearer {keys['revoked']}"}, base.stores, None,
                        NOW) is None
    assert authenticate({}, base.stores, None, NOW) is None


# --- the dashboard: a person's sign-in -----------------------------------------------------

class Identity:
    """Session cookies as Identity Platform would mint and verify them (revocation included)."""

    def __init__(self) -> None:
        self.by_token: dict[str, Principal] = {}
        self.cookies: dict[str, Principal] = {}
        self.revoked: set[str] = set()
        self.signed_out: list[str] = []

    def session_cookie(self, id_token: str) -> str | None:
        principal = self.by_token.get(id_token)
        if principal is None:
            return None
        value = f"c.{len(self.cookies)}.s"
        self.cookies[value] = principal
        return value

    def verify_session_cookie(self, cookie: str) -> Principal | None:
        found = self.cookies.get(cookie)
        return None if found is None or found.uid in self.revoked else found

    def sign_out(self, principal: Principal) -> None:
        self.signed_out.append(principal.uid)
        self.revoked.add(principal.uid)


class Toolkit:
    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self.passwords: dict[str, tuple[str, Principal]] = {}
        self.codes: dict[str, str] = {}

    def person(self, customer: str, email: str, role: str, password: str) -> None:
        principal = Principal(customer, f"user:{email}", role,
                              people.for_user(customer, email, role).levels,
                              f"{email}.seed", f"uid-{email}")
        self.passwords[email] = (password, principal)

    def sign_in_with_password(self, email: str, password: str) -> SignedIn:
        known = self.passwords.get(email)
        if known is None or known[0] != password or known[1].uid in self.identity.revoked:
            raise SignInRefused("INVALID_LOGIN_CREDENTIALS")
        token = f"id-{email}"
        self.identity.by_token[token] = known[1]
        return SignedIn(token, email)

    def sign_in_with_email_link(self, email: str, code: str) -> SignedIn:
        known = self.passwords.get(email)
        if known is None or self.codes.pop(code, None) != email \
                or known[1].uid in self.identity.revoked:
            raise SignInRefused("INVALID_OOB_CODE")
        token = f"id-{email}"
        self.identity.by_token[token] = known[1]
        return SignedIn(token, email)

    def accept_invitation(self, code: str, password: str) -> str:
        email = self.codes.pop(code, None)
        if email is None:
            raise SignInRefused("INVALID_OOB_CODE")
        self.passwords[email] = (password, self.passwords[email][1])
        return email


def people_dashboard() -> tuple[DashboardDeps, Any, Toolkit, Identity]:
    deps, stores, _ = deps_and_tokens()
    identity = Identity()
    toolkit = Toolkit(identity)
    toolkit.person("acme", "owner@acme.test", "owner", "owner-password")
    toolkit.person("acme", "viewer@acme.test", "viewer", "viewer-password")
    toolkit.person("acme", "biller@acme.test", "biller", "biller-password")
    return DashboardDeps(stores=stores, session_key=deps.session_key, clock=lambda: NOW,
                         identity=identity, sign_in=lambda: toolkit), stores, toolkit, identity


def person_cookie(deps: DashboardDeps, email: str, password: str) -> str:
    page = request(deps, "POST", "/login", form={"email": email, "password": password,
                                                 "next": "/"})
    assert page.status == 303, page.html
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    match = re.match(rf"{sessions.COOKIE}=([^;]*);", cookie)
    assert match
    return match.group(1)


def test_a_person_signs_in_is_audited_and_sees_who_they_are() -> None:
    deps, stores, _, _ = people_dashboard()
    form = handle(WebRequest("GET", "/login", {}, {}, b"", True), deps)  # a first visit
    assert 'name="email"' in form.html and 'name="form_token"' in form.html
    assert "upstream_form=" in form.headers["Set-Cookie"]
    assert "Secure" in form.headers["Set-Cookie"] and "HttpOnly" in form.headers["Set-Cookie"]
    cookie = person_cookie(deps, "owner@acme.test", "owner-password")
    assert stores.audit["acme"][-1]["action"] == "POST /login"
    assert stores.audit["acme"][-1]["actor"] == "user:owner@acme.test"
    home = request(deps, "GET", "/", cookie)
    assert home.status == 200 and "owner@acme.test (owner)" in home.html
    assert 'href="/audit"' in home.html


def test_refusals_look_alike_and_a_login_without_its_form_token_is_refused() -> None:
    deps, stores, _, _ = people_dashboard()
    before = len(stores.audit["acme"])
    bodies = set()
    for email, password in (("owner@acme.test", "wrong"), ("nobody@acme.test", "x"),
                            (HOSTILE, "x"), ("owner@acme.test", "")):
        page = request(deps, "POST", "/login", form={"email": email, "password": password})
        assert page.status == 401 and "Set-Cookie" not in page.headers
        bodies.add(re.sub(r'nonce="[^"]+"|value="[^"]*"', "", page.html))
    key_refused = request(deps, "POST", "/login", form={"key": "upk_nonsense"})
    bodies.add(re.sub(r'nonce="[^"]+"|value="[^"]*"', "", key_refused.html))
    assert len(bodies) == 1 and "&lt;script" not in next(iter(bodies))
    no_token = request(deps, "POST", "/login", body=b"email=owner%40acme.test&password=owner-"
                                                    b"password")
    assert no_token.status == 403
    wrong_token = request(deps, "POST", "/login", form={"form_token": "g" * 32,
                                                        "email": "owner@acme.test",
                                                        "password": "owner-password"})
    assert wrong_token.status == 403
    assert len(stores.audit["acme"]) == before


def test_a_viewer_cannot_act_and_the_refusal_is_audited() -> None:
    deps, stores, _, _ = people_dashboard()
    cookie = person_cookie(deps, "viewer@acme.test", "viewer-password")
    home = request(deps, "GET", "/", cookie)
    assert 'data-action="acknowledge"' not in home.html and 'href="/audit"' not in home.html
    csrf = re.search(r'name="csrf" value="([^"]+)"', home.html)
    assert csrf
    page = request(deps, "POST", "/alerts/a1/acknowledge", cookie, {"csrf": csrf.group(1)})
    assert page.status == 403 and stores.alerts["acme"]["a1"].get("status") != "acknowledged"
    entry = stores.audit["acme"][-1]
    assert (entry["actor"], entry["role"], entry["outcome"]) == ("user:viewer@acme.test",
                                                                 "viewer", 403)
    assert request(deps, "GET", "/audit", cookie).status == 403


def test_a_biller_acts_under_their_own_name_with_a_csrf_token_of_their_session() -> None:
    deps, stores, _, _ = people_dashboard()
    biller = person_cookie(deps, "biller@acme.test", "biller-password")
    owner = person_cookie(deps, "owner@acme.test", "owner-password")
    owner_csrf = re.search(r'name="csrf" value="([^"]+)"', request(deps, "GET", "/", owner).html)
    assert owner_csrf
    # Another session's token is refused: tokens are bound to the session they came with.
    assert request(deps, "POST", "/alerts/a1/acknowledge", biller,
                   {"csrf": owner_csrf.group(1)}).status == 403
    csrf = re.search(r'name="csrf" value="([^"]+)"', request(deps, "GET", "/", biller).html)
    assert csrf
    done = request(deps, "POST", "/alerts/a1/acknowledge", biller, {"csrf": csrf.group(1)})
    assert done.status == 303
    assert stores.alerts["acme"]["a1"]["history"][-1]["by"] == "user:biller@acme.test"


def test_signing_out_revokes_the_session_and_a_disabled_person_is_out_at_once() -> None:
    deps, _, _, identity = people_dashboard()
    cookie = person_cookie(deps, "biller@acme.test", "biller-password")
    home = request(deps, "GET", "/", cookie)
    csrf = re.search(r'name="csrf" value="([^"]+)"', home.html)
    assert csrf
    out = request(deps, "POST", "/logout", cookie, {"csrf": csrf.group(1)})
    assert out.status == 303 and "Max-Age=0" in out.headers["Set-Cookie"]
    assert identity.signed_out == ["uid-biller@acme.test"]
    assert request(deps, "GET", "/", cookie).status == 303  # back to the sign-in page
    other = person_cookie(deps, "viewer@acme.test", "viewer-password")
    identity.revoked.add("uid-viewer@acme.test")  # what `upstream user disable` does
    assert request(deps, "GET", "/", other).headers["Location"] == "/login?next=/"


def test_the_audit_page_filters_and_its_csv_neutralises_formulas() -> None:
    deps, stores, _, _ = people_dashboard()
    owner = person_cookie(deps, "owner@acme.test", "owner-password")
    viewer = person_cookie(deps, "viewer@acme.test", "viewer-password")
    headers_page = request(deps, "GET", "/", viewer)
    assert headers_page.status == 200
    stores.audit["acme"][-1]["user_agent"] = "=HYPERLINK(\"http://evil.example\")"
    page = request(deps, "GET", "/audit", owner, query={"actor": "user:viewer@acme.test"})
    assert page.status == 200 and "user:viewer@acme.test" in page.html
    assert 'data-actor="user:owner@acme.test"' not in page.html
    for bad in ({"since": "yesterday"}, {"page": "not-ours"}, {"actor": "x" * 300}):
        assert request(deps, "GET", "/audit", owner, query=bad).status == 400
    exported = request(deps, "GET", "/audit.csv", owner)
    assert exported.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in exported.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.html)))
    assert rows and all(not r["user_agent"].startswith("=") for r in rows)
    assert any(r["user_agent"].startswith("'=HYPERLINK") for r in rows)
    assert stores.audit["acme"][-1]["action"] == "GET /audit.csv"  # the export is audited


def test_an_invitation_sets_a_password_once_and_refuses_short_or_reused_links() -> None:
    deps, stores, toolkit, _ = people_dashboard()
    toolkit.person("acme", "new@acme.test", "biller", "unset-password")
    toolkit.codes["code-1"] = "new@acme.test"
    form = request(deps, "GET", "/welcome", query={"code": "code-1"})
    assert form.status == 200 and 'value="code-1"' in form.html
    assert request(deps, "GET", "/welcome").status == 400
    short = request(deps, "POST", "/welcome", form={"code": "code-1", "password": "short",
                                                    "confirm": "short"})
    assert short.status == 400 and "characters" in short.html
    differ = request(deps, "POST", "/welcome", form={"code": "code-1",
                                                     "password": "a long password 1",
                                                     "confirm": "a long password 2"})
    assert differ.status == 400 and "differ" in differ.html
    done = request(deps, "POST", "/welcome", form={"code": "code-1",
                                                   "password": "a long password 1",
                                                   "confirm": "a long password 1"})
    assert done.status == 303 and "SameSite=Lax" in done.headers["Set-Cookie"]
    assert stores.audit["acme"][-1]["action"] == "POST /welcome"
    again = request(deps, "POST", "/welcome", form={"code": "code-1",
                                                    "password": "a long password 1",
                                                    "confirm": "a long password 1"})
    assert again.status == 400 and "expired or was already used" in again.html
    assert request(deps, "POST", "/welcome", body=b"code=code-1&password=a+long+password+1&"
                                                  b"confirm=a+long+password+1").status == 403


# --- adding people: invitations ------------------------------------------------------------

class Admin:
    def __init__(self) -> None:
        self.crew: dict[str, dict[str, Any]] = {}

    def people(self, customer_id: str) -> list[dict[str, Any]]:
        return [p for p in self.crew.values() if p["customer"] == customer_id]

    def add(self, customer_id: str, email: str, role: Any, password: str | None) -> str:
        if email in self.crew:
            raise PeopleError("that e-mail address already has an Upstream account")
        self.crew[email] = {"customer": customer_id, "email": email, "role": role,
                            "disabled": False, "uid": f"uid-{email}"}
        return f"uid-{email}"

    def revoke(self, customer_id: str, email: str) -> None:
        self.revoked = [*getattr(self, "revoked", []), email]

    def disable(self, customer_id: str, email: str) -> None:
        people.check_not_last_owner(self.people(customer_id), email)
        self.crew[email]["disabled"] = True

    def enable(self, customer_id: str, email: str) -> None:
        self.crew[email]["disabled"] = False

    def set_role(self, customer_id: str, email: str, role: Any) -> None:
        if role != "owner":
            people.check_not_last_owner(self.people(customer_id), email)
        self.crew[email]["role"] = role

    def invitation_code(self, customer_id: str, email: str) -> str:
        return "one/time code"

    def practice_of(self, email: str) -> str | None:
        found = self.crew.get(email)
        return str(found["customer"]) if found and not found["disabled"] else None

    def sign_in_link_code(self, customer_id: str, email: str, continue_url: str) -> str:
        self.links = [*getattr(self, "links", []), (email, continue_url)]
        return f"link-code-for-{email}"


class Mailer:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[EmailMessage] = []
        self.fail = fail

    @property
    def sender(self) -> str:
        return "alerts@upstream.test"

    def send(self, message: EmailMessage) -> None:
        if self.fail:
            raise OSError("mail server down")
        self.sent.append(message)


class AuditLog:
    def __init__(self) -> None:
        self.entries: list[tuple[str, dict[str, Any]]] = []

    def append(self, customer: str, entry: dict[str, Any]) -> None:
        self.entries.append((customer, entry))


class Tenants:
    def get(self, customer_id: str) -> dict[str, Any] | None:
        return {"name": HOSTILE} if customer_id == "acme" else None


def _people_deps(mailer: Mailer | None) -> tuple[PeopleDeps, Admin, AuditLog]:
    admin, audit_log = Admin(), AuditLog()
    return PeopleDeps(identity=admin, tenants=Tenants(), audit=audit_log,
                      mailer=lambda: mailer, dashboard_url="https://dash.example/"), \
        admin, audit_log


def test_adding_a_person_invites_them_by_mail_and_audits_it() -> None:
    mailer = Mailer()
    deps, admin, audit_log = _people_deps(mailer)
    actor = Actor("cli:ops", "operator")
    done = add_person("acme", " New@Acme.TEST ", "biller", None, actor, NOW, deps)
    assert done == {"customer_id": "acme", "email": "new@acme.test", "role": "biller",
                    "invitation_sent": True}
    (message,) = mailer.sent
    assert message["To"] == "new@acme.test"
    assert "https://dash.example/welcome?code=one%2Ftime%20code" in message.get_content()
    assert [e["action"] for _, e in audit_log.entries] == ["user add", "user invite"]
    assert all("code" not in str(e) for _, e in audit_log.entries)  # the link is a credential
    with pytest.raises(PeopleError):
        add_person("acme", "new@acme.test", "viewer", None, actor, NOW, deps)
    with pytest.raises(PeopleError):  # another role: not the same person's re-run
        add_person("acme", "new@acme.test", "viewer", None, actor, NOW, deps, exists_ok=True)
    again = add_person("acme", "new@acme.test", "biller", None, actor, NOW, deps, exists_ok=True)
    assert again["existed"] is True and len(mailer.sent) == 1
    for email, role, customer in (("not-an-address", "viewer", "acme"),
                                  ("a@b.test", "root", "acme"), ("a@b.test", "viewer", "nope")):
        with pytest.raises(PeopleError):
            add_person(customer, email, role, None, actor, NOW, deps)
    assert list(admin.crew) == ["new@acme.test"]


def test_without_a_mail_server_the_operator_gets_the_link_to_hand_over() -> None:
    for mailer in (None, Mailer(fail=True)):
        deps, _, _ = _people_deps(mailer)
        done = add_person("acme", "p@acme.test", "viewer", None, Actor("cli:ops", "operator"),
                          NOW, deps)
        assert done["invitation_sent"] is False
        assert done["invitation_link"].startswith("https://dash.example/welcome?code=")
    deps, _, _ = _people_deps(Mailer())
    made = add_person("acme", "o@acme.test", "owner", "pw-123456", Actor("cli:ops", "operator"),
                      NOW, deps)
    assert made["signs_in_with"] == "password" and "invitation_link" not in made


def test_listing_and_disabling_keep_the_last_owner() -> None:
    deps, _, audit_log = _people_deps(Mailer())
    actor = Actor("cli:ops", "operator")
    add_person("acme", "o@acme.test", "owner", "pw-123456", actor, NOW, deps)
    add_person("acme", "v@acme.test", "viewer", "pw-123456", actor, NOW, deps)
    with pytest.raises(PeopleError):
        disable_person("acme", "o@acme.test", actor, NOW + timedelta(seconds=1), deps)
    disable_person("acme", "V@acme.test", actor, NOW, deps)
    listed = list_people("acme", actor, NOW, deps)
    assert {p["email"]: p["disabled"] for p in listed} == {"o@acme.test": False,
                                                          "v@acme.test": True}
    assert audit_log.entries[-1][1]["action"] == "user list"


def test_form_token_is_what_the_tests_send() -> None:
    assert len(FORM_TOKEN) >= 16  # dashboard_signin accepts 16–64 characters
