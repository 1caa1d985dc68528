"""Changing people: role changes, enabling, and the dashboard's people page (owners and
admins), on fakes. The same use-cases against the Auth emulator:
tests/integration/test_people_on_emulators.py."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.unit.test_api import NOW
from tests.unit.test_dashboard import csrf_of, request
from tests.unit.test_people import (
    HOSTILE,
    Admin,
    AuditLog,
    Mailer,
    Tenants,
    people_dashboard,
    person_cookie,
)
from upstream.domain.practice.people import PeopleError
from upstream.services.dashboard import DashboardDeps
from upstream.services.people import (
    Actor,
    PeopleDeps,
    add_person,
    change_role,
    disable_person,
    enable_person,
)

OPERATOR, OWNER, ADMIN = (Actor("cli:ops", "operator"), Actor("user:o@acme.test", "owner"),
                          Actor("user:a@acme.test", "admin"))


def crew(mailer: Mailer | None = None) -> tuple[PeopleDeps, Admin, AuditLog]:
    admin, log = Admin(), AuditLog()
    deps = PeopleDeps(identity=admin, tenants=Tenants(), audit=log, mailer=lambda: mailer,
                      dashboard_url="https://dash.example/")
    for email, role in (("o@acme.test", "owner"), ("a@acme.test", "admin"),
                        ("v@acme.test", "viewer")):
        add_person("acme", email, role, "pw-123456", OPERATOR, NOW, deps)
    log.entries.clear()
    return deps, admin, log


def test_a_role_change_is_audited_and_keeps_an_owner() -> None:
    deps, admin, log = crew()
    done = change_role("acme", " V@acme.test", "biller", ADMIN, NOW, deps)
    assert done == {"customer_id": "acme", "email": "v@acme.test", "role": "biller",
                    "changed": True}
    assert admin.crew["v@acme.test"]["role"] == "biller"
    assert [(e["action"], e["resource"], e["actor"]) for _, e in log.entries] == [
        ("user role biller", "people/v@acme.test", "user:a@acme.test")]
    assert change_role("acme", "v@acme.test", "biller", ADMIN, NOW, deps)["changed"] is False
    assert len(log.entries) == 1  # nothing changed, nothing recorded
    with pytest.raises(PeopleError, match="only owner"):
        change_role("acme", "o@acme.test", "admin", OWNER, NOW, deps)
    for email, role, customer in (("nobody@acme.test", "viewer", "acme"),
                                  ("v@acme.test", "root", "acme"), (HOSTILE, "viewer", "acme"),
                                  ("v@acme.test", "viewer", "other")):
        with pytest.raises(PeopleError):
            change_role(customer, email, role, OWNER, NOW, deps)
    change_role("acme", "a@acme.test", "owner", OWNER, NOW, deps)  # a second owner, then
    change_role("acme", "o@acme.test", "viewer", OWNER, NOW, deps)  # the first may step down
    assert admin.crew["o@acme.test"]["role"] == "viewer"


@pytest.mark.parametrize("act", [
    lambda deps: add_person("acme", "n@acme.test", "owner", None, ADMIN, NOW, deps),
    lambda deps: change_role("acme", "v@acme.test", "owner", ADMIN, NOW, deps),
    lambda deps: change_role("acme", "o@acme.test", "viewer", ADMIN, NOW, deps),
    lambda deps: disable_person("acme", "o@acme.test", ADMIN, NOW, deps),
    lambda deps: enable_person("acme", "o@acme.test", ADMIN, NOW, deps),
])
def test_an_admin_neither_makes_nor_touches_an_owner(act: Any) -> None:
    deps, admin, log = crew(Mailer())
    before = {k: dict(v) for k, v in admin.crew.items()}
    with pytest.raises(PeopleError, match="only an owner"):
        act(deps)
    assert admin.crew == before and log.entries == []


def test_a_disabled_person_is_enabled_again_with_their_role() -> None:
    deps, admin, log = crew()
    disable_person("acme", "v@acme.test", OWNER, NOW, deps)
    enable_person("acme", "v@acme.test", OWNER, NOW, deps)
    assert admin.crew["v@acme.test"] == {"customer": "acme", "email": "v@acme.test",
                                         "role": "viewer", "disabled": False,
                                         "uid": "uid-v@acme.test"}
    assert [e["action"] for _, e in log.entries] == ["user disable", "user enable"]


# --- the page ------------------------------------------------------------------------------

def post(deps: DashboardDeps, path: str, cookie: str, form: dict[str, str]) -> Any:
    """A form sent as the browser sends it: with the session's CSRF token from a page."""
    token = csrf_of(request(deps, "GET", "/", cookie).html)
    return request(deps, "POST", path, cookie, form={"csrf": token, **form})


def people_page_deps(mailer: Mailer | None) -> tuple[DashboardDeps, Any, Admin, AuditLog]:
    deps, stores, toolkit, _ = people_dashboard()
    made, admin, service_log = crew(mailer)
    for email, role in (("owner@acme.test", "owner"), ("biller@acme.test", "biller"),
                        ("viewer@acme.test", "viewer")):
        add_person("acme", email, role, "pw-123456", OPERATOR, NOW, made)
    toolkit.person("acme", "a@acme.test", "admin", "admin-password")
    service_log.entries.clear()
    return replace(deps, people=lambda: made), stores, admin, service_log


def test_owners_manage_people_in_the_browser_one_audit_entry_per_change() -> None:
    mailer = Mailer()
    deps, stores, admin, service_log = people_page_deps(mailer)
    cookie = person_cookie(deps, "owner@acme.test", "owner-password")
    listing = request(deps, "GET", "/people", cookie)
    assert listing.status == 200 and 'data-email="v@acme.test"' in listing.html
    assert "owner@acme.test (you)" in listing.html and 'id="nav-people"' in listing.html
    before = len(stores.audit["acme"])
    steps = [("/people/add", {"email": "New@Acme.test", "role": "biller"}, "added",
              "people/new@acme.test/add/biller"),
             ("/people/role", {"email": "v@acme.test", "role": "biller"}, "role",
              "people/v@acme.test/role/biller"),
             ("/people/disable", {"email": "v@acme.test"}, "disabled",
              "people/v@acme.test/disable"),
             ("/people/enable", {"email": "v@acme.test"}, "enabled", "people/v@acme.test/enable"),
             ("/people/invite", {"email": "new@acme.test"}, "invited",
              "people/new@acme.test/invite")]
    for path, form, done, resource in steps:
        answer = post(deps, path, cookie, form)
        assert (answer.status, answer.headers.get("Location")) == (303, f"/people?done={done}")
        entry = stores.audit["acme"][-1]
        assert (entry["action"], entry["resource"], entry["outcome"]) == (
            f"POST {path}", resource, 303)
    made = [e["action"] for e in stores.audit["acme"][before:]]
    assert made == [a for path, *_ in steps for a in ("GET /", f"POST {path}")]  # one each
    assert service_log.entries == []
    assert admin.crew["new@acme.test"]["role"] == "biller" and len(mailer.sent) == 2
    assert admin.crew["v@acme.test"] == {"customer": "acme", "email": "v@acme.test",
                                         "role": "biller", "disabled": False,
                                         "uid": "uid-v@acme.test"}


def test_the_page_refuses_with_reasons_and_escapes_what_was_typed() -> None:
    deps, stores, admin, _ = people_page_deps(Mailer())
    cookie = person_cookie(deps, "owner@acme.test", "owner-password")
    before = {k: dict(v) for k, v in admin.crew.items()}
    refusals = [("/people/add", {"email": HOSTILE, "role": "viewer"}, "not an e-mail"),
                ("/people/add", {"email": "x@acme.test", "role": "<b>root</b>"}, "role must"),
                ("/people/add", {"email": "v@acme.test", "role": "viewer"}, "already has"),
                ("/people/role", {"email": "nobody@acme.test", "role": "viewer"}, "no such"),
                ("/people/role", {"email": "owner@acme.test", "role": "viewer"},
                 "your own role"),
                ("/people/disable", {"email": "owner@acme.test"}, "yourself"),
                ("/people/invite", {"email": "ghost@acme.test"}, "no such active"),
                ("/people/disable", {}, "not an e-mail")]
    for path, form, reason in refusals:
        answer = post(deps, path, cookie, form)
        assert answer.status == 400 and reason in answer.html, (path, form)
        assert "<script>alert" not in answer.html and "<b>root</b>" not in answer.html
        assert stores.audit["acme"][-1]["resource"] == f"{path}"  # nothing typed recorded
    assert admin.crew == before
    assert request(deps, "POST", "/people/role", cookie,
                   body=b"email=v%40acme.test&role=owner").status == 403  # no CSRF token


@pytest.mark.parametrize("who, password", [("viewer@acme.test", "viewer-password"),
                                           ("biller@acme.test", "biller-password")])
def test_viewers_and_billers_cannot_open_or_change_people(who: str, password: str) -> None:
    deps, stores, admin, _ = people_page_deps(Mailer())
    cookie = person_cookie(deps, who, password)
    assert request(deps, "GET", "/people", cookie).status == 403
    answer = post(deps, "/people/role", cookie, {"email": "v@acme.test", "role": "owner"})
    assert answer.status == 403 and admin.crew["v@acme.test"]["role"] == "viewer"
    assert stores.audit["acme"][-1]["outcome"] == 403


def test_an_admin_cannot_make_an_owner_from_the_page() -> None:
    deps, _, admin, _ = people_page_deps(Mailer())
    cookie = person_cookie(deps, "a@acme.test", "admin-password")
    answer = post(deps, "/people/role", cookie, {"email": "v@acme.test", "role": "owner"})
    assert answer.status == 400 and "only an owner" in answer.html
    assert "Only an owner makes or" in request(deps, "GET", "/people", cookie).html
    assert admin.crew["v@acme.test"]["role"] == "viewer"


def test_without_a_mail_server_the_admin_sees_the_link_to_hand_over() -> None:
    deps, stores, _, _ = people_page_deps(None)
    cookie = person_cookie(deps, "owner@acme.test", "owner-password")
    answer = post(deps, "/people/add", cookie, {"email": "n@acme.test", "role": "viewer"})
    assert answer.status == 200 and 'id="invitation-link"' in answer.html
    assert "https://dash.example/welcome?code=" in answer.html
    assert "code" not in stores.audit["acme"][-1]["resource"]  # the link is a credential
