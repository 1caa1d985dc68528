"""The single sign-on pages and settings: the settings section (validated by the API's model,
the client secret into the secret store and never echoed, hostile text escaped, off again),
the start page (same answer for no provider and no practice, the sealed cookie), the
callback (a refusal reads alike whatever the reason; success is a session, audited), and a
practice that requires single sign-on refusing the right password."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.fakes import FakeSecrets
from tests.unit.sso_fixtures import REDIRECT, authorize
from tests.unit.test_dashboard import request
from tests.unit.test_people import people_dashboard, person_cookie
from upstream.domain.practice import sso
from upstream.domain.practice.people import Principal, for_user
from upstream.services.dashboard import DashboardDeps, handle
from upstream.services.sso_sign_in import SsoDeps
from upstream.services.web_pages import Page, WebRequest

HOSTILE = '"><script>alert(1)</script>'


def _settings_form(deps: DashboardDeps, cookie: str) -> str:
    page = request(deps, "GET", "/settings", cookie)
    assert page.status == 200, page.html
    match = re.search(r'name="csrf" value="([^"]+)"', page.html)
    assert match
    return match.group(1)


def _owner(secrets: FakeSecrets | None = None) -> tuple[DashboardDeps, Any, str, str]:
    deps, stores, _, _ = people_dashboard()
    deps = replace(deps, secrets=secrets or FakeSecrets())
    cookie = person_cookie(deps, "owner@acme.test", "owner-password")
    return deps, stores, cookie, _settings_form(deps, cookie)


def _save(deps: DashboardDeps, cookie: str, csrf: str, **fields: str) -> Page:
    return request(deps, "POST", "/settings/sso", cookie, {"csrf": csrf, **fields})


def test_the_provider_is_saved_with_its_secret_apart() -> None:
    deps, stores, cookie, csrf = _owner()
    saved = _save(deps, cookie, csrf, sso_issuer="https://idp.acme.test",
                  sso_client_id="upstream-web", sso_client_secret="very-secret-value",
                  sso_domains="Acme.test, clinic.acme.test")
    assert saved.status == 303, saved.html
    assert stores.tenants["acme"]["sso"] == {
        "issuer": "https://idp.acme.test", "client_id": "upstream-web",
        "domains": ["acme.test", "clinic.acme.test"], "required": False}
    assert deps.secrets and deps.secrets.get("sso-client-secret-acme") == b"very-secret-value"
    page = request(deps, "GET", "/settings", cookie)
    assert "very-secret-value" not in page.html and "(set; leave empty to keep it)" in page.html
    again = _save(deps, cookie, csrf, sso_issuer="https://idp.acme.test",
                  sso_client_id="upstream-web", sso_domains="acme.test", sso_required="on")
    assert again.status == 303  # the stored secret is kept
    assert stores.tenants["acme"]["sso"]["required"] is True
    assert deps.secrets.get("sso-client-secret-acme") == b"very-secret-value"
    off = _save(deps, cookie, csrf, sso_issuer="")
    assert off.status == 303 and stores.tenants["acme"]["sso"] is None


@pytest.mark.parametrize("fields,field", [
    ({"sso_issuer": "http://idp.acme.test", "sso_client_id": "c", "sso_domains": "acme.test",
      "sso_client_secret": "s"}, "sso_issuer"),
    ({"sso_issuer": "https://idp.acme.test", "sso_client_id": "", "sso_domains": "acme.test",
      "sso_client_secret": "s"}, "sso_client_id"),
    ({"sso_issuer": "https://idp.acme.test", "sso_client_id": "c", "sso_domains": "",
      "sso_client_secret": "s"}, "sso_domains"),
    ({"sso_issuer": "https://idp.acme.test", "sso_client_id": "c",
      "sso_domains": HOSTILE, "sso_client_secret": "s"}, "sso_domains"),
    ({"sso_issuer": "https://idp.acme.test", "sso_client_id": "c", "sso_domains": "acme.test"},
     "sso_client_secret"),
    ({"sso_issuer": "https://idp.acme.test", "sso_client_id": "c", "sso_domains": "acme.test",
      "sso_client_secret": "tab\there"}, "sso_client_secret")])
def test_wrong_fields_are_refused_beside_themselves(fields: dict[str, str], field: str) -> None:
    deps, stores, cookie, csrf = _owner()
    page = _save(deps, cookie, csrf, **fields)
    assert page.status == 400
    assert f'data-field="{field}"' in page.html, page.html
    assert "sso" not in stores.tenants["acme"]
    assert deps.secrets and deps.secrets.get("sso-client-secret-acme") is None
    assert "<script>alert(1)" not in page.html  # what was typed comes back escaped
    assert "tab\there" not in page.html


def test_only_owners_and_admins_change_it() -> None:
    deps, stores, _, _ = _owner()
    biller = person_cookie(deps, "biller@acme.test", "biller-password")
    page = request(deps, "POST", "/settings/sso", biller, {"csrf": "x",
                                                           "sso_issuer": "https://i.test"})
    assert page.status == 403 and "sso" not in stores.tenants["acme"]


# --- the start page and the callback -----------------------------------------------------------

def _with_sso(world: Any) -> tuple[DashboardDeps, Any]:
    sso_deps, _, _ = world
    deps, stores, _, identity = people_dashboard()
    stores.tenants["acme"]["sso"] = sso_deps.tenant("acme")["sso"]
    # What Identity Platform's sign-in for the linked person (uid u-b) gives the session.
    identity.by_token["marked:u-b:sso"] = Principal(
        "acme", "user:biller@clinic.example", "biller",
        for_user("acme", "biller@clinic.example", "biller").levels, "seed", "u-b", True)
    return replace(deps, sso=lambda: replace(sso_deps, tenant=stores.tenants.get)), stores


def _start(deps: DashboardDeps, practice: str) -> Page:
    return handle(WebRequest("GET", "/login/sso", {"practice": practice, "next": "/alerts"},
                             {}, b"", True), deps)


def test_no_provider_and_no_practice_answer_alike(world: Any) -> None:
    deps, _ = _with_sso(world)
    pages = [_start(deps, who) for who in ("beta", "no-such-practice", "../etc", HOSTILE)]
    assert {p.status for p in pages} == {404}
    texts = {re.sub(r'(nonce|value)="[^"]+"', "", p.html) for p in pages}
    assert len(texts) <= 2  # the typed `next` is the only thing that differs, never the reason
    assert all("upstream_sso" not in p.headers.get("Set-Cookie", "") for p in pages)


def test_the_round_trip_makes_an_audited_session(world: Any) -> None:
    deps, stores = _with_sso(world)
    started = _start(deps, "acme")
    assert started.status == 200
    cookie = started.headers["Set-Cookie"]
    assert cookie.startswith("upstream_sso=") and "HttpOnly" in cookie \
        and "SameSite=Lax" in cookie and "Secure" in cookie
    link = re.search(r'id="sso-continue" href="([^"]+)"', started.html)
    assert link and 'http-equiv="refresh"' in started.html
    query = authorize(html.unescape(link.group(1)), "biller@clinic.example")
    sealed = cookie.split(";")[0].partition("=")[2]
    done = handle(WebRequest("GET", "/login/sso/callback", query,
                             {"Cookie": f"upstream_sso={sealed}"}, b"", True), deps)
    assert done.status == 303 and done.headers["Location"] == "/alerts", done.html
    assert "SameSite=Lax" in done.headers["Set-Cookie"]
    assert stores.audit["acme"][-1]["action"] == "GET /login/sso/callback"
    again = handle(WebRequest("GET", "/login/sso/callback", query,
                              {"Cookie": f"upstream_sso={sealed}"}, b"", True), deps)
    assert again.status == 401 and "Set-Cookie" not in again.headers


def test_refusals_read_alike(world: Any) -> None:
    deps, _ = _with_sso(world)
    answers = []
    for query, jar in (({"state": "x", "code": "y"}, ""),
                       ({"state": "x", "code": "y"}, "upstream_sso=forged.value"),
                       ({}, ""), ({"error": "access_denied"}, "")):
        page = handle(WebRequest("GET", "/login/sso/callback", query, {"Cookie": jar}, b"",
                                 True), deps)
        answers.append((page.status, re.sub(r'nonce="[^"]+"', "", page.html)))
    assert len(set(answers)) == 1 and answers[0][0] == 401


def test_a_practice_requiring_sso_refuses_the_right_password_only(world: Any) -> None:
    deps, stores = _with_sso(world)
    stores.tenants["acme"]["sso"] = {**stores.tenants["acme"]["sso"], "required": True}
    right = request(deps, "POST", "/login", form={"email": "owner@acme.test",
                                                  "password": "owner-password", "next": "/"})
    assert right.status == 403 and "single sign-on" in right.html
    assert "Set-Cookie" not in right.headers or "upstream_session" not in \
        right.headers["Set-Cookie"]
    wrong = request(deps, "POST", "/login", form={"email": "owner@acme.test",
                                                  "password": "wrong-password", "next": "/"})
    assert wrong.status == 401  # the wrong password learns nothing about the practice


def test_the_callback_url_is_the_configured_dashboards() -> None:
    deps = SsoDeps(provider=None, people=None, toolkit=None, tenant=dict().get,  # type: ignore[arg-type]
                   client_secret=lambda c: None, first_use=lambda k, e: True,
                   dashboard_url="http://dashboard.test/")
    assert deps.redirect_uri == REDIRECT
    assert parse_qs(urlsplit(REDIRECT).query) == {}
    assert sso.STATE_COOKIE == "upstream_sso"


def test_a_single_sign_on_session_counts_as_the_second_step(world: Any) -> None:
    """The practice's provider runs its own second factor: a practice asking billers for a
    code lets a biller in through single sign-on without one (the session says `sso`)."""
    deps, _ = _with_sso(world)
    deps = replace(deps, mfa_roles=("owner", "admin", "biller"))
    started = _start(deps, "acme")
    link = re.search(r'id="sso-continue" href="([^"]+)"', started.html)
    assert link
    query = authorize(html.unescape(link.group(1)), "biller@clinic.example")
    sealed = started.headers["Set-Cookie"].split(";")[0].partition("=")[2]
    done = handle(WebRequest("GET", "/login/sso/callback", query,
                             {"Cookie": f"upstream_sso={sealed}"}, b"", True), deps)
    assert done.status == 303 and done.headers["Location"] == "/alerts", done.html
    session = done.headers["Set-Cookie"].split(";")[0].partition("=")[2]
    assert request(deps, "GET", "/", session).status == 200
