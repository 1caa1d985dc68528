"""Identity Platform or Firestore down while a person signs in (issue 13's follow-up): the
dashboard answers one 503 page to retry, never a 500 nor "wrong password"; the sign-in-link
form answers exactly as it does for an unknown address, so an outage is no oracle of who has
an account. The adapters turn their transport's failures into `ServiceUnavailable`; one real
firebase-admin call to a closed port is in tests/integration/test_people_on_emulators."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest
import requests
from firebase_admin import auth
from firebase_admin import exceptions as fb_exceptions
from google.api_core import exceptions as gexc

from tests.unit.test_dashboard import FORM_TOKEN, request
from tests.unit.test_people import Mailer, people_dashboard
from tests.unit.test_sign_in_link import link_deps
from upstream.adapters.identity import _outage_as_unavailable
from upstream.adapters.identity_toolkit import IdentityToolkit, SignInRefused
from upstream.ports import ServiceUnavailable
from upstream.services.dashboard_signin import SIGN_IN_LINK_SENT

OUTAGES: list[Exception] = [gexc.ServiceUnavailable("firestore down"),  # type: ignore[no-untyped-call]
                            gexc.DeadlineExceeded("slow"), ConnectionError("reset")]  # type: ignore[no-untyped-call]


class _Answer:
    def __init__(self, status: int, body: Any) -> None:
        self.status_code, self._body, self.ok = status, body, status < 400

    def json(self) -> Any:
        if isinstance(self._body, Exception):
            raise self._body
        return self._body


class _Session:
    """What `requests.Session.post` gives back: an answer, or the exception it raises."""

    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome

    def post(self, *args: Any, **kwargs: Any) -> Any:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


@pytest.mark.parametrize("outcome", [
    requests.ConnectionError("refused"), requests.Timeout("slow"),
    _Answer(503, ValueError("an HTML error page")), _Answer(500, {"error": {"message": "X"}})])
def test_the_toolkit_reports_an_outage_not_a_refusal(outcome: Any) -> None:
    toolkit = IdentityToolkit("http://127.0.0.1:9", "key", session=_Session(outcome))  # type: ignore[arg-type]
    with pytest.raises(ServiceUnavailable):
        toolkit.sign_in_with_password("owner@acme.test", "pw")


@pytest.mark.parametrize("outcome", [
    _Answer(400, {"error": {"message": "INVALID_LOGIN_CREDENTIALS"}}),
    _Answer(400, ValueError("not JSON")), _Answer(200, ["not", "an", "object"])])
def test_the_toolkit_still_refuses_what_it_refuses(outcome: Any) -> None:
    toolkit = IdentityToolkit("http://127.0.0.1:9", "key", session=_Session(outcome))  # type: ignore[arg-type]
    with pytest.raises(SignInRefused):
        toolkit.sign_in_with_password("owner@acme.test", "pw")


@pytest.mark.parametrize("failure", [
    fb_exceptions.UnavailableError("down"), fb_exceptions.DeadlineExceededError("slow"),
    fb_exceptions.InternalError("oops"), fb_exceptions.UnknownError("?")])
def test_firebase_admin_outages_become_service_unavailable(failure: Exception) -> None:
    @_outage_as_unavailable
    def call() -> None:
        raise failure

    with pytest.raises(ServiceUnavailable):
        call()


def test_a_firebase_admin_refusal_is_not_an_outage() -> None:
    @_outage_as_unavailable
    def call() -> None:
        raise auth.UserNotFoundError("no such user")

    with pytest.raises(auth.UserNotFoundError):
        call()


class _DownToolkit:
    def sign_in_with_password(self, email: str, password: str) -> Any:
        raise ServiceUnavailable("Identity Platform did not answer")

    sign_in_with_email_link = sign_in_with_password

    def accept_invitation(self, code: str, password: str) -> str:
        raise ServiceUnavailable("Identity Platform did not answer")


def test_password_sign_in_during_an_outage_is_a_503_page_to_retry() -> None:
    deps, _, _, _ = people_dashboard()
    down = replace(deps, sign_in=lambda: _DownToolkit())
    page = request(down, "POST", "/login", form={"email": "owner@acme.test",
                                                 "password": "owner-password", "next": "/"})
    assert page.status == 503 and "try again" in page.html
    assert "password" not in page.html.lower().split("<form")[0]  # not "wrong password"
    assert "Set-Cookie" not in page.headers or "upstream_session" not in page.headers["Set-Cookie"]


@pytest.mark.parametrize("failure", OUTAGES)
def test_a_signed_in_page_during_a_firestore_outage_is_a_503_page(failure: Exception) -> None:
    deps, stores, _, _ = people_dashboard()
    signed = request(deps, "POST", "/login", form={"email": "owner@acme.test",
                                                   "password": "owner-password", "next": "/"})
    cookie = re.match(r"([^=]+)=([^;]*);", signed.headers["Set-Cookie"])
    assert cookie and signed.status == 303

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise failure

    stores.tenant = broken  # type: ignore[method-assign]
    page = request(deps, "GET", "/", cookie.group(2))
    assert page.status == 503 and "try again" in page.html


@pytest.mark.parametrize("where", ["practice_of", "window", "link_code", "audit"])
def test_the_link_form_answers_alike_when_something_behind_it_is_down(where: str) -> None:
    mailer = Mailer()
    deps, _, _, admin, log, _ = link_deps(mailer)

    def down(*args: Any, **kwargs: Any) -> Any:
        raise (ServiceUnavailable("identity down") if where in ("practice_of", "link_code")
               else OUTAGES[0])

    if where == "practice_of":
        admin.practice_of = down  # type: ignore[method-assign]
    elif where == "link_code":
        admin.sign_in_link_code = down  # type: ignore[method-assign]
    elif where == "audit":
        log.append = down  # type: ignore[method-assign]
    else:
        deps = replace(deps, link_window=down)
    pages = [request(deps, "POST", "/login/link",
                     form={"form_token": FORM_TOKEN, "email": email})
             for email in ("owner@acme.test", "nobody@acme.test")]
    assert [(p.status, SIGN_IN_LINK_SENT in p.html) for p in pages] == [(200, True)] * 2
    assert len(mailer.sent) == (1 if where == "audit" else 0)


def test_the_real_adapter_against_a_closed_port_raises_service_unavailable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """firebase-admin itself, its transport refused (nothing listens on the port)."""
    import socket

    from upstream.adapters.identity import FirebaseIdentity

    with socket.socket() as probe:  # a port nothing listens on: bound, never listening
        probe.bind(("127.0.0.1", 0))
        monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", f"127.0.0.1:{probe.getsockname()[1]}")
        identity = FirebaseIdentity("upstream-closed-port")
        with pytest.raises(ServiceUnavailable):
            identity.practice_of("owner@acme.test")
        with pytest.raises(ServiceUnavailable):
            identity.people("acme")
