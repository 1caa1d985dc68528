"""E-mail-link sign-in (Contract 6) on fakes: the request answers alike for any address, a
link goes only to an active person, once per window; the link's page asks for one click (a
mail scanner's GET spends nothing); a used, forged or another address's code is refused; the
session is audited. The same on the Auth emulator: tests/integration/test_people_on_emulators."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.unit.test_api import NOW
from tests.unit.test_dashboard import FORM_TOKEN, request
from tests.unit.test_people import HOSTILE, Admin, AuditLog, Mailer, Tenants, people_dashboard
from upstream.domain import session as sessions
from upstream.services.dashboard import DashboardDeps
from upstream.services.dashboard_signin import SIGN_IN_LINK_REFUSED, SIGN_IN_LINK_SENT
from upstream.services.people import Actor, PeopleDeps, add_person


def link_deps(mailer: Mailer | None) -> tuple[DashboardDeps, Any, Any, Admin, AuditLog, set[str]]:
    deps, stores, toolkit, _ = people_dashboard()
    admin, log = Admin(), AuditLog()
    made = PeopleDeps(identity=admin, tenants=Tenants(), audit=log, mailer=lambda: mailer,
                      dashboard_url="https://dash.example/")
    add_person("acme", "owner@acme.test", "owner", "pw-123456", Actor("cli:ops", "operator"),
               NOW, made)
    add_person("acme", "gone@acme.test", "viewer", "pw-123456", Actor("cli:ops", "operator"),
               NOW, made)
    admin.crew["gone@acme.test"]["disabled"] = True
    log.entries.clear()
    claimed: set[str] = set()

    def window(email: str) -> bool:
        fresh = email not in claimed
        claimed.add(email)
        return fresh

    return (replace(deps, people=lambda: made, link_window=window), stores, toolkit, admin,
            log, claimed)


def _ask(deps: DashboardDeps, email: str) -> Any:
    return request(deps, "POST", "/login/link", form={"form_token": FORM_TOKEN, "email": email})


def _link_of(mailer: Mailer) -> tuple[str, str, str]:
    text = mailer.sent[-1].get_content()
    link = re.search(r"https://dash\.example/login/link/finish\?\S+", text)
    assert link
    query = parse_qs(urlsplit(link.group(0)).query)
    return link.group(0), query["code"][0], query["email"][0]


def test_a_link_reaches_an_active_person_once_per_window_and_the_answer_never_differs() -> None:
    mailer = Mailer()
    deps, _, _, admin, log, _ = link_deps(mailer)
    pages = [_ask(deps, email) for email in ("Owner@acme.test", "owner@acme.test",
                                             "nobody@acme.test", "gone@acme.test", HOSTILE, "")]
    assert {(p.status, SIGN_IN_LINK_SENT in p.html) for p in pages} == {(200, True)}
    assert len({re.sub(r'nonce="[^"]+"', "", p.html) for p in pages}) == 1
    assert [m["To"] for m in mailer.sent] == ["owner@acme.test"]  # once in the window
    _, code, email = _link_of(mailer)
    assert (code, email) == ("link-code-for-owner@acme.test", "owner@acme.test")
    assert admin.links == [("owner@acme.test", "https://dash.example/login/link/finish")]
    assert [(c, e["action"], e["outcome"]) for c, e in log.entries] == [
        ("acme", "sign-in link sent", 202)]
    assert "code" not in str(log.entries)  # the link is a credential


def test_without_its_form_token_or_a_mail_server_no_link_goes_out() -> None:
    mailer = Mailer()
    deps, _, _, _, _, _ = link_deps(mailer)
    refused = request(deps, "POST", "/login/link", body=b"email=owner%40acme.test")
    assert refused.status == 403 and mailer.sent == []
    quiet, _, _, _, _, _ = link_deps(None)
    assert _ask(quiet, "owner@acme.test").status == 200  # nothing to send with, same answer
    failing = Mailer(fail=True)
    broken, _, _, _, log, _ = link_deps(failing)
    assert _ask(broken, "owner@acme.test").status == 200 and log.entries == []


def test_the_link_asks_for_a_click_signs_in_once_and_is_audited() -> None:
    mailer = Mailer()
    deps, stores, toolkit, _, _, _ = link_deps(mailer)
    _ask(deps, "owner@acme.test")
    _, code, email = _link_of(mailer)
    toolkit.codes[code] = email  # what Identity Platform holds for the code
    landing = request(deps, "GET", "/login/link/finish", query={"code": code, "email": email})
    assert landing.status == 200 and 'id="finish-sign-in"' in landing.html
    assert code in toolkit.codes  # opening the link spent nothing
    done = request(deps, "POST", "/login/link/finish",
                   form={"form_token": FORM_TOKEN, "code": code, "email": email})
    assert done.status == 303 and done.headers["Location"] == "/"
    cookie = re.match(rf"{sessions.COOKIE}=([^;]*);", done.headers["Set-Cookie"])
    assert cookie and "SameSite=Lax" in done.headers["Set-Cookie"]
    assert "owner@acme.test (owner)" in request(deps, "GET", "/", cookie.group(1)).html
    assert stores.audit["acme"][-2]["action"] == "POST /login/link/finish"
    again = request(deps, "POST", "/login/link/finish",
                    form={"form_token": FORM_TOKEN, "code": code, "email": email})
    assert again.status == 400 and SIGN_IN_LINK_REFUSED in again.html


@pytest.mark.parametrize("form, status", [
    ({"code": "made-up", "email": "owner@acme.test"}, 400),
    ({"code": "link-code-for-owner@acme.test", "email": "viewer@acme.test"}, 400),
    ({"code": "link-code-for-owner@acme.test", "email": HOSTILE}, 400),
    ({"code": "", "email": "owner@acme.test"}, 400),
])
def test_forged_or_misaddressed_codes_are_refused(form: dict[str, str], status: int) -> None:
    deps, stores, toolkit, _, _, _ = link_deps(Mailer())
    toolkit.codes["link-code-for-owner@acme.test"] = "owner@acme.test"
    before = len(stores.audit.get("acme", []))
    answer = request(deps, "POST", "/login/link/finish", form={"form_token": FORM_TOKEN, **form})
    assert answer.status == status and "Set-Cookie" not in answer.headers
    assert "<script>alert" not in answer.html
    assert len(stores.audit.get("acme", [])) == before


def test_a_link_page_without_its_code_or_form_token_refuses() -> None:
    deps, _, toolkit, _, _, _ = link_deps(Mailer())
    assert request(deps, "GET", "/login/link/finish", query={"code": "x"}).status == 400
    toolkit.codes["c"] = "owner@acme.test"
    no_token = request(deps, "POST", "/login/link/finish",
                       body=b"code=c&email=owner%40acme.test")
    assert no_token.status == 403 and "c" in toolkit.codes


def test_the_link_page_shows_a_typed_address_as_text() -> None:
    deps, _, _, _, _, _ = link_deps(Mailer())
    page = request(deps, "GET", "/login/link/finish", query={"code": "c", "email": HOSTILE})
    assert page.status == 200 and "<script>alert" not in page.html
    assert "&lt;script&gt;" in page.html
