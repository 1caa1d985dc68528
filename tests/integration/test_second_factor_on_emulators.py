"""The second factor through the running stack: a practice asking owners for a code; the
owner's right password leads only to "check your e-mail", the mailed sign-in link to adding
an authenticator (the stored state holds a nonce, never the secret); a code makes the
session, whose cookie carries the claim our custom token added (verified by the Auth
emulator); the owner's password-only ID token is refused by the API while a biller's works;
a used code is refused; a reset from the people page ends the owner's sessions, and the
password alone cannot add the new authenticator."""

from __future__ import annotations

import base64
import re
import time

import pytest
import requests

from tests.conftest import emulator_db
from tests.integration.test_api_on_emulators import _seed
from tests.integration.test_people_on_emulators import _form_token, _identity
from upstream.adapters.firestore_store import CUSTOMERS, tenant_collection
from upstream.domain.practice import second_factor as factor
from upstream.stack import manager
from upstream.stack.config import StackConfig

pytestmark = pytest.mark.emulators


def _password(base: str, email: str, password: str) -> tuple[requests.Session,
                                                              requests.Response]:
    browser = requests.Session()
    answer = browser.post(base + "/login", timeout=10, allow_redirects=False, data={
        "email": email, "password": password, "next": "/",
        "form_token": _form_token(browser, base + "/login")})
    return browser, answer


def _through_the_link(browser: requests.Session, base: str, config: StackConfig,
                      email: str) -> requests.Response:
    """The password alone leads to "check your e-mail"; the mailed link's finish page leads
    back to the code page, now allowed to add the authenticator."""
    from tests.conftest import wait_for
    from tests.integration.test_people_on_emulators import _sign_in_links

    asked = browser.get(base + "/login/2fa", timeout=10)
    assert asked.status_code == 200 and "Check your e-mail" in asked.text, asked.text
    assert 'id="totp-secret"' not in asked.text
    (link,) = wait_for(lambda: _sign_in_links(config, email), timeout=30)
    landing = browser.get(link, timeout=10)
    fields = dict(re.findall(r'name="(code|email|form_token)" value="([^"]*)"', landing.text))
    return browser.post(base + "/login/link/finish", data=fields, timeout=10,
                        allow_redirects=False)


def _code(secret_text: str, offset: int = 0) -> str:
    secret = base64.b32decode(secret_text + "=" * (-len(secret_text) % 8))
    return factor.code_at(secret, time.time() + offset * factor.STEP_SECONDS)


def _submit(browser: requests.Session, base: str, code: str) -> requests.Response:
    page = browser.get(base + "/login/2fa", timeout=10)
    token = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert token, page.text
    return browser.post(base + "/login/2fa", timeout=10, allow_redirects=False,
                        data={"code": code, "form_token": token.group(1)})


def test_the_second_factor_through_the_stack(clean_stack: StackConfig, unique: str) -> None:
    identity, toolkit = _identity(clean_stack)
    db = emulator_db(clean_stack)
    acme = _seed(db, f"acme-{unique}", unique)
    practice = acme["customer"]
    db.collection(CUSTOMERS).document(practice).set({"mfa_roles": ["owner", "admin"]},
                                                    merge=True)
    base = manager.function_urls(clean_stack)["api"].rstrip("/")
    owner, other, biller = (f"o-{unique}@acme.test", f"o2-{unique}@acme.test",
                            f"b-{unique}@acme.test")
    for email, role in ((owner, "owner"), (other, "owner"), (biller, "biller")):
        identity.add(practice, email, role, "password-123")  # type: ignore[arg-type]

    browser, first = _password(base, owner, "password-123")
    assert first.status_code == 303 and first.headers["Location"] == "/login/2fa"
    assert "upstream_session" not in first.headers.get("Set-Cookie", "")
    linked = _through_the_link(browser, base, clean_stack, owner)
    assert linked.status_code == 303 and linked.headers["Location"] == "/login/2fa"
    shown = browser.get(base + "/login/2fa", timeout=10)
    secret_text = re.search(r'id="totp-secret">([A-Z2-7]+)<', shown.text)
    assert secret_text and 'id="totp-qr"' in shown.text
    stored = [d.to_dict() for d in tenant_collection(db, practice, "second_factors").stream()]
    assert len(stored) == 1 and secret_text.group(1) not in str(stored)  # a nonce, not it
    assert _submit(browser, base, "000000" if _code(secret_text.group(1)) != "000000"
                   else "111111").status_code == 401
    code = _code(secret_text.group(1))
    done = _submit(browser, base, code)
    assert done.status_code == 303, done.text
    home = browser.get(base + "/", timeout=10)
    assert home.status_code == 200 and f"{owner} (owner)" in home.text
    session = browser.cookies.get("upstream_session")
    assert session and identity.verify_session_cookie(session).second_factor  # type: ignore[union-attr]

    # The same code for a second sign-in: that time step is spent.
    again, _ = _password(base, owner, "password-123")
    assert _submit(again, base, code).status_code == 401

    # The API: the owner's password alone is not enough; a biller's is.
    owner_token = toolkit.sign_in_with_password(owner, "password-123").id_token
    biller_token = toolkit.sign_in_with_password(biller, "password-123").id_token
    api = base + "/v1/alerts"
    assert requests.get(api, headers={"Authorization": f"Bearer {owner_token}"},
                        timeout=10).status_code == 401
    assert requests.get(api, headers={"Authorization": f"Bearer {biller_token}"},
                        timeout=10).status_code == 200

    # Another owner resets it: the first owner's session ends, the next sign-in enrols anew.
    second, _ = _password(base, other, "password-123")
    assert _through_the_link(second, base, clean_stack, other).status_code == 303
    other_secret = re.search(r'id="totp-secret">([A-Z2-7]+)<',
                             second.get(base + "/login/2fa", timeout=10).text)
    assert other_secret and other_secret.group(1) != secret_text.group(1)
    assert _submit(second, base, _code(other_secret.group(1))).status_code == 303
    people = second.get(base + "/people", timeout=10)
    csrf = re.search(r'name="csrf" value="([^"]+)"', people.text)
    assert csrf
    time.sleep(1.1)  # revocation is to the second: the owner's session must predate it
    reset = second.post(base + "/people/reset-2fa", timeout=10, allow_redirects=False,
                        data={"csrf": csrf.group(1), "email": owner})
    assert reset.status_code == 303, reset.text
    assert browser.get(base + "/", timeout=10, allow_redirects=False).status_code == 303
    assert tenant_collection(db, practice, "second_factors").document(
        identity.federated_person(practice, owner, "none").uid  # type: ignore[union-attr]
    ).get().exists is False
    # After the reset the password alone may not add the new authenticator: the mailbox must.
    fresh, _ = _password(base, owner, "password-123")
    again_asked = fresh.get(base + "/login/2fa", timeout=10)
    assert "Check your e-mail" in again_asked.text and 'id="totp-secret"' not in again_asked.text
