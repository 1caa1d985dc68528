"""Single sign-on clicked through in a real headless Chromium: the sign-in page's single
sign-on form, our page moving on by itself to the practice's provider (under the page's CSP),
the provider's own sign-in form (the local OIDC stand-in), and back signed in as the invited
person; a person the practice never invited is turned away with one plain message."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import emulator_db, wait_for
from tests.e2e.test_dashboard_browser import SHOTS, _severe, browser  # noqa: F401
from upstream.adapters.firestore_store import FirestoreTenants
from upstream.adapters.identity import FirebaseIdentity
from upstream.adapters.secrets import LocalFileSecretStore
from upstream.services.tenants import sso_client_secret
from upstream.stack import manager
from upstream.stack.config import StackConfig
from upstream.stack.fake_idp import FakeIdp
from upstream.stack.quiet_server import serve

pytestmark = pytest.mark.emulators


@pytest.fixture
def practice(emulators: StackConfig) -> Iterator[tuple[str, FakeIdp, str]]:
    import uuid

    unique = uuid.uuid4().hex[:8]
    customer = f"sso-{unique}"
    base = manager.function_urls(emulators)["api"].rstrip("/")
    provider = FakeIdp("http://placeholder", {}, {})
    server = serve(provider, "127.0.0.1", 0)
    provider.issuer = f"http://127.0.0.1:{server.port}"
    provider.clients = {"upstream-web": ("idp-secret", base + "/login/sso/callback")}
    provider.people = {f"biller-{unique}@clinic.test": ("idp-pass", True),
                       f"stranger-{unique}@clinic.test": ("idp-pass", True)}
    FirestoreTenants(emulator_db(emulators)).upsert(customer, {
        "name": "Riverside ABA", "sso": {"issuer": provider.issuer, "client_id": "upstream-web",
                                         "domains": ["clinic.test"], "required": False}})
    LocalFileSecretStore(emulators.secrets_file).put(sso_client_secret(customer), b"idp-secret")
    FirebaseIdentity(emulators.project).add(customer, f"biller-{unique}@clinic.test", "biller",
                                            None)
    yield customer, provider, unique
    server.shutdown()


def _through_the_provider(driver: Any, base: str, customer: str, email: str) -> None:
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(base + "/login")
    driver.find_element(By.CSS_SELECTOR, "details.sso-sign-in summary").click()
    driver.find_element(By.ID, "practice").send_keys(customer)
    driver.find_element(By.ID, "sso-start").click()
    wait_for(lambda: driver.find_elements(By.ID, "idp-email"), timeout=30)  # the provider
    driver.find_element(By.ID, "idp-email").send_keys(email)
    driver.find_element(By.ID, "idp-password").send_keys("idp-pass")
    driver.find_element(By.ID, "idp-sign-in").click()


def test_single_sign_on_in_chromium(browser: Any, emulators: StackConfig,  # noqa: F811
                                    practice: tuple[str, FakeIdp, str]) -> None:
    from selenium.webdriver.common.by import By

    customer, provider, unique = practice
    base = manager.function_urls(emulators)["api"].rstrip("/")
    _through_the_provider(browser, base, customer, f"biller-{unique}@clinic.test")
    wait_for(lambda: browser.find_elements(By.ID, "alerts"), timeout=30)
    assert f"biller-{unique}@clinic.test (biller)" in browser.page_source
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "sso-signed-in.png"))
    # The stand-in provider has no favicon; nothing of ours may fail (CSP, script, load).
    assert [e for e in _severe(browser) if provider.issuer not in e["message"]] == []

    _through_the_provider(browser, base, customer, f"stranger-{unique}@clinic.test")
    wait_for(lambda: "Single sign-on did not work" in browser.page_source, timeout=30)
    assert not browser.find_elements(By.ID, "alerts")
    assert browser.get_cookie("upstream_session") is None


def test_an_owner_adds_an_authenticator_and_signs_in_with_a_code_in_chromium(
        browser: Any, emulators: StackConfig) -> None:  # noqa: F811
    """The practice asks owners for a code: after the password, "check your e-mail"; the
    e-mailed link opens the QR code (an SVG data image under the page's CSP); the typed key
    gives the code an app would, and the code signs in."""
    import base64
    import time
    import uuid

    from selenium.webdriver.common.by import By

    from tests.integration.test_people_on_emulators import _sign_in_links
    from upstream.domain.practice import second_factor as factor

    customer, email = f"mfa-{uuid.uuid4().hex[:8]}", f"owner-{uuid.uuid4().hex[:8]}@clinic.test"
    FirestoreTenants(emulator_db(emulators)).upsert(customer, {
        "name": "Riverside ABA", "mfa_roles": ["owner", "admin"]})
    FirebaseIdentity(emulators.project).add(customer, email, "owner", "owner-password-1")
    base = manager.function_urls(emulators)["api"].rstrip("/")
    browser.delete_all_cookies()
    _severe(browser)  # what earlier tests left in the log
    browser.get(base + "/login")
    browser.find_element(By.ID, "email").send_keys(email)
    browser.find_element(By.ID, "password").send_keys("owner-password-1")
    browser.find_element(By.ID, "sign-in").click()
    # The password alone may not add an authenticator: the e-mailed link may.
    wait_for(lambda: "Check your e-mail" in browser.page_source, timeout=30)
    assert not browser.find_elements(By.ID, "totp-qr")
    (link,) = wait_for(lambda: _sign_in_links(emulators, email), timeout=30)
    browser.get(link)
    browser.find_element(By.ID, "finish-sign-in").click()
    wait_for(lambda: browser.find_elements(By.ID, "totp-qr"), timeout=30)
    qr = browser.find_element(By.ID, "totp-qr")
    assert browser.execute_script("return arguments[0].naturalWidth", qr) > 0
    key = browser.find_element(By.ID, "totp-secret").text
    secret = base64.b32decode(key + "=" * (-len(key) % 8))
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "second-factor-enrol.png"))
    browser.find_element(By.ID, "code").send_keys("000000" if factor.code_at(
        secret, time.time()) != "000000" else "111111")
    browser.find_element(By.ID, "verify-code").click()
    wait_for(lambda: "not accepted" in browser.page_source, timeout=30)
    assert [e["message"] for e in _severe(browser)] == [
        f"{base}/login/2fa - Failed to load resource: the server responded with a status of "
        "401 (UNAUTHORIZED)"]  # the wrong code's answer, and nothing else
    browser.find_element(By.ID, "code").send_keys(factor.code_at(secret, time.time()))
    browser.find_element(By.ID, "verify-code").click()
    wait_for(lambda: browser.find_elements(By.ID, "alerts"), timeout=30)
    assert f"{email} (owner)" in browser.page_source
    assert _severe(browser) == []
