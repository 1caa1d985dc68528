"""The dashboard in a real headless Chromium (Debian's, driven by Selenium through Debian's
chromedriver) against the `api` function on the local stack, with sample data uploaded the
way staff would and detectors run the way Cloud Scheduler would: sign in, see the alerts,
acknowledge one, see it change, screenshot. The screenshots land in `.upstream/screenshots/`
(or $UPSTREAM_SCREENSHOTS)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import emulator_db, wait_for
from tests.e2e.test_local_stack import cli, upload
from tests.unit.test_notify import alert
from upstream.adapters.firestore_store import tenant_collection
from upstream.stack import manager
from upstream.stack.config import StackConfig

pytestmark = pytest.mark.emulators
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SHOTS = Path(os.environ.get("UPSTREAM_SCREENSHOTS",
                            Path(__file__).resolve().parents[2] / ".upstream" / "screenshots"))
HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail("Chromium is not installed: `make browser` installs Debian's chromium "
                    "and chromium-driver (the README's test command does it)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # The closed network here refuses Chromium's background connections: switch them off.
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic", "--window-size=1366,900",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def demo_tenant(tmp_path_factory: pytest.TempPathFactory,
                emulators: StackConfig) -> dict[str, str]:
    """Three months of sample data for one practice, the weekly run on 2025-04-01, a key."""
    manager.reset_data(emulators)
    out = tmp_path_factory.mktemp("browser-sample")
    cli(emulators, "sample", "--out", str(out), "--start", "2025-01-01", "--end", "2025-03-31",
        "--lines-per-day", "30")
    cli(emulators, "tenant", "add", "clinic", "--name", "Riverside ABA")
    for path in sorted((out / "claims").iterdir()):
        assert upload(emulators, path, "clinic")["status"] == "complete"
    upload(emulators, out / "authorizations" / "authorizations.csv", "clinic")
    cli(emulators, "run", "weekly", "--customer", "clinic", "--as-of", "2025-04-01")
    writer = json.loads(cli(emulators, "tenant", "key", "clinic", "--scope", "write").stdout)
    reader = json.loads(cli(emulators, "tenant", "key", "clinic", "--scope", "read").stdout)
    return {"write": writer["token"], "read": reader["token"],
            "base": manager.function_urls(emulators)["api"].rstrip("/")}


def _sign_in(driver: Any, base: str, token: str) -> None:
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(base + "/")
    assert "/login" in driver.current_url
    driver.find_element(By.CSS_SELECTOR, "details.key-sign-in summary").click()
    driver.find_element(By.ID, "key").send_keys(token)
    driver.find_element(By.ID, "key-sign-in").click()
    wait_for(lambda: driver.find_elements(By.ID, "alerts"), timeout=30)


def _person_sign_in(driver: Any, base: str, email: str, password: str) -> None:
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(base + "/")
    assert "/login" in driver.current_url
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "sign-in").click()
    wait_for(lambda: driver.find_elements(By.ID, "alerts"), timeout=30)


def _severe(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def test_sign_in_see_alerts_acknowledge_one_and_see_it_change(
        browser: Any, demo_tenant: dict[str, str]) -> None:
    from selenium.webdriver.common.by import By

    SHOTS.mkdir(parents=True, exist_ok=True)
    base = demo_tenant["base"]
    _sign_in(browser, base, demo_tenant["write"])
    assert "Riverside ABA" in browser.title
    cards = browser.find_elements(By.CSS_SELECTOR, "article[data-status='open']")
    assert cards, "the sample data raised no open alert"
    open_before = int(browser.find_element(By.ID, "count-open").text)
    assert open_before == len(cards)
    assert browser.find_elements(By.CSS_SELECTOR, ".chart img")  # the payer trend charts
    assert "Authorization calendar" in browser.page_source
    assert "2025-03-spreadsheet_tab.tsv" in browser.page_source  # recent uploads
    browser.save_screenshot(str(SHOTS / "dashboard-before.png"))
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1366, min(int(height) + 100, 12000))
    browser.save_screenshot(str(SHOTS / "dashboard-full-page.png"))
    browser.set_window_size(1366, 900)

    target = cards[0].get_attribute("data-alert-id")
    title = cards[0].find_element(By.CSS_SELECTOR, "h3 a").text
    cards[0].find_element(By.CSS_SELECTOR, "button[data-action='acknowledge']").click()
    wait_for(lambda: "done=acknowledge" in browser.current_url, timeout=30)
    changed = browser.find_element(By.ID, f"alert-{target}")
    assert changed.get_attribute("data-status") == "acknowledged"
    assert "Acknowledged" in browser.find_element(By.CSS_SELECTOR, ".flash").text
    assert int(browser.find_element(By.ID, "count-open").text) == open_before - 1
    browser.save_screenshot(str(SHOTS / "dashboard-acknowledged.png"))

    # the same change through the JSON API, and its history names the dashboard session
    stored = requests.get(f"{base}/v1/alerts/{target}", timeout=10, headers={
        "Authorization": f"Bearer {demo_tenant['write']}"}).json()
    assert stored["status"] == "acknowledged" and stored["title"] == title
    assert stored["history"][-1]["by"].startswith("dashboard:")

    browser.get(f"{base}/alerts/{target}")
    assert title in browser.page_source and "History" in browser.page_source
    assert not _severe(browser), _severe(browser)  # no CSP violation, no failed resource


def test_hostile_text_is_shown_as_text_and_a_reader_cannot_act(
        browser: Any, demo_tenant: dict[str, str], emulators: StackConfig) -> None:
    from selenium.webdriver.common.by import By

    tenant_collection(emulator_db(emulators), "clinic", "alerts").document("hostile").set(
        alert(alert_id="hostile", customer_id="clinic", payer=HOSTILE, title=HOSTILE,
              severity="CRITICAL", last_seen="2025-04-01", first_seen="2025-04-01"))
    _sign_in(browser, demo_tenant["base"], demo_tenant["read"])
    card = browser.find_element(By.ID, "alert-hostile")
    assert HOSTILE in card.text  # shown literally…
    assert browser.execute_script("return document.scripts.length") == 0  # …never run
    assert not card.find_elements(By.TAG_NAME, "img")
    assert not browser.find_elements(By.CSS_SELECTOR, "button[data-action]")  # read-only
    browser.save_screenshot(str(SHOTS / "dashboard-read-only.png"))
    browser.find_element(By.CSS_SELECTOR, "header button").click()  # sign out
    wait_for(lambda: "/login" in browser.current_url, timeout=30)
    browser.get(demo_tenant["base"] + "/")
    assert "/login" in browser.current_url


def _invitation_link(emulators: StackConfig, to: str) -> str:
    import email
    import email.policy
    import re

    def found() -> str | None:
        for path in sorted((emulators.mail_dir).glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if message["To"] == to and "invited" in str(message["Subject"]):
                body = message.get_body(("plain",))
                match = re.search(r"(http://\S+/welcome\?code=\S+)", body.get_content()
                                  if body else "")
                if match:
                    return match.group(1)
        return None

    link: str = wait_for(found, timeout=30)
    return link


def test_invited_owner_sets_a_password_a_viewer_cannot_act_and_the_owner_reads_the_audit(
        browser: Any, demo_tenant: dict[str, str], emulators: StackConfig,
        tmp_path: Path) -> None:
    """Contract 6 end to end in Chromium, through the Auth emulator and the stack's SMTP:
    invitation → first password → signed in; a viewer sees no action and is refused a forged
    one; the owner uploads a file with the progress bar to its summary, changes a channel and
    receives its test e-mail, and sees all of it on the audit page."""
    from selenium.webdriver.common.by import By

    base = demo_tenant["base"]
    owner = f"owner-{os.getpid()}@riverside.example"
    added = json.loads(cli(emulators, "user", "add", "clinic", owner, "--role", "owner").stdout)
    assert added["invitation_sent"] is True
    cli(emulators, "user", "add", "clinic", "front.desk@riverside.example", "--role", "viewer",
        "--password", "viewer-password-1")
    link = _invitation_link(emulators, owner)

    browser.delete_all_cookies()
    browser.get(link)
    browser.find_element(By.ID, "password").send_keys("owner password one")
    browser.find_element(By.ID, "confirm").send_keys("owner password one")
    browser.find_element(By.ID, "set-password").click()
    wait_for(lambda: browser.find_elements(By.ID, "alerts"), timeout=30)
    assert f"{owner} (owner)" in browser.find_element(By.ID, "signed-in-as").text
    browser.get(link)  # the same link again: used
    browser.find_element(By.ID, "password").send_keys("another password 2")
    browser.find_element(By.ID, "confirm").send_keys("another password 2")
    browser.find_element(By.ID, "set-password").click()
    wait_for(lambda: "already used" in browser.page_source, timeout=30)

    _person_sign_in(browser, base, "front.desk@riverside.example", "viewer-password-1")
    assert not browser.find_elements(By.CSS_SELECTOR, "button[data-action]")
    assert not browser.find_elements(By.ID, "nav-audit")
    assert not browser.find_elements(By.ID, "nav-upload")
    cards = browser.find_elements(By.CSS_SELECTOR, "article[data-status='open']")
    target = cards[0].get_attribute("data-alert-id")
    csrf = browser.find_element(By.CSS_SELECTOR, "header input[name='csrf']").get_attribute(
        "value")
    # A forged acknowledge with the viewer's own session and CSRF token (what a script or a
    # crafted form from their browser would send): refused by the server, not just hidden.
    jar = {c["name"]: c["value"] for c in browser.get_cookies()}
    forged = requests.post(f"{base}/alerts/{target}/acknowledge", data={"csrf": csrf},
                           cookies=jar, timeout=10, allow_redirects=False)
    assert forged.status_code == 403
    browser.get(base + "/audit")
    assert "Only the practice's owners and admins" in browser.page_source
    browser.get_log("browser")  # that 403 page is expected: drain it

    _person_sign_in(browser, base, owner, "owner password one")
    _upload_in_the_browser(browser, emulators, tmp_path)
    _resumable_upload_through_a_dropped_connection(browser, emulators, tmp_path / "large")
    _change_a_channel_and_send_a_test(browser, emulators)
    _change_a_role_on_the_people_page(browser)
    browser.find_element(By.ID, "nav-audit").click()
    wait_for(lambda: browser.find_elements(By.ID, "audit-entries"), timeout=30)
    rows = browser.find_elements(By.CSS_SELECTOR, "#audit-entries tbody tr[data-actor]")
    seen = {(r.get_attribute("data-actor"), r.get_attribute("data-action")) for r in rows}
    viewer = "user:front.desk@riverside.example"
    assert (viewer, "POST /alerts/<alert_id>/<action>") in seen
    assert (viewer, "GET /audit") in seen and (f"user:{owner}", "POST /welcome") in seen
    assert (f"user:{owner}", "POST /people/role") in seen
    assert ("cli:" + os.environ.get("USER", "root"), "user add") in seen or any(
        a.startswith("cli:") and act == "user add" for a, act in seen)
    browser.find_element(By.ID, "actor").send_keys(viewer)
    browser.find_element(By.CSS_SELECTOR, "#audit-filters button").click()
    wait_for(lambda: "actor=" in browser.current_url, timeout=30)
    actors = {r.get_attribute("data-actor") for r in browser.find_elements(
        By.CSS_SELECTOR, "#audit-entries tbody tr[data-actor]")}
    assert actors == {viewer}
    browser.save_screenshot(str(SHOTS / "dashboard-audit.png"))
    assert "/audit.csv" in browser.find_element(By.ID, "audit-csv").get_attribute("href")
    assert not _severe(browser), _severe(browser)


def _change_a_role_on_the_people_page(browser: Any) -> None:
    """The owner makes the front desk a biller from /people: the select, the button, the
    confirmation, and the row showing the new role."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.find_element(By.ID, "nav-people").click()
    wait_for(lambda: browser.find_elements(By.ID, "people"), timeout=30)
    row = browser.find_element(By.CSS_SELECTOR,
                               "#people tr[data-email='front.desk@riverside.example']")
    Select(row.find_element(By.TAG_NAME, "select")).select_by_value("biller")
    row.find_element(By.CSS_SELECTOR, "form[action='/people/role'] button").click()
    wait_for(lambda: browser.find_elements(By.ID, "people-done"), timeout=30)
    row = browser.find_element(By.CSS_SELECTOR,
                               "#people tr[data-email='front.desk@riverside.example']")
    chosen = Select(row.find_element(By.TAG_NAME, "select")).first_selected_option
    assert chosen.get_attribute("value") == "biller"
    browser.save_screenshot(str(SHOTS / "dashboard-people.png"))


def _upload_in_the_browser(browser: Any, emulators: StackConfig, tmp_path: Path) -> None:
    """Drag-and-drop's file input, the signed PUT through the stack's gateway (CORS and the
    signature checked there), the bridge, file_ingest, and the summary page to `complete`."""
    from selenium.webdriver.common.by import By

    cli(emulators, "sample", "--out", str(tmp_path), "--start", "2025-04-02", "--end",
        "2025-04-20", "--lines-per-day", "20", "--seed", "7")
    claims = sorted((tmp_path / "claims").iterdir())[0]
    browser.find_element(By.ID, "nav-upload").click()
    wait_for(lambda: browser.find_elements(By.ID, "drop-zone"), timeout=30)
    browser.find_element(By.ID, "file").send_keys(str(claims))
    browser.find_element(By.ID, "upload-button").click()
    wait_for(lambda: "/uploads/md5-" in browser.current_url, timeout=60)
    wait_for(lambda: browser.find_element(By.ID, "upload-state").get_attribute(
        "data-status") == "complete", timeout=120, interval=1)
    rows = int(browser.find_element(By.ID, "rows").text)
    accepted = int(browser.find_element(By.ID, "accepted").text)
    rejected = int(browser.find_element(By.ID, "rejected").text)
    assert rows > 0 and accepted + rejected <= rows
    browser.save_screenshot(str(SHOTS / "dashboard-upload-complete.png"))
    if rejected:
        link = browser.find_element(By.ID, "rejects-link").get_attribute("href")
        jar = {c["name"]: c["value"] for c in browser.get_cookies()}
        rejects = requests.get(link, cookies=jar, timeout=10)
        assert rejects.status_code == 200 and rejects.text.startswith("line,reason")


def _resumable_upload_through_a_dropped_connection(browser: Any, emulators: StackConfig,
                                                   out: Path) -> None:
    """A file over the stack's resumable threshold (lowered to 256 KiB for the tests) goes as a
    session in chunks. Its chunks are blocked in Chromium (DevTools' blocked URLs: each
    fails like a dropped connection) until the page says so and waits; unblocked, the page
    asks the session where it stopped and finishes. What is stored is exactly the file."""
    import hashlib

    from selenium.webdriver.common.by import By

    cli(emulators, "sample", "--out", str(out), "--start", "2025-05-01", "--end",
        "2025-05-31", "--lines-per-day", "300", "--seed", "8")
    claims = sorted((out / "claims").iterdir())[0]
    data = claims.read_bytes()
    assert len(data) > 2 * 256 * 1024, len(data)  # three chunks or more
    browser.find_element(By.ID, "nav-upload").click()
    wait_for(lambda: browser.find_elements(By.ID, "drop-zone"), timeout=30)
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*upload_id=*"]})
    try:
        browser.find_element(By.ID, "file").send_keys(str(claims))
        browser.find_element(By.ID, "upload-button").click()
        wait_for(lambda: "Connection lost" in browser.find_element(
            By.ID, "upload-status").text, timeout=30)
    finally:
        browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    wanted = f"/uploads/md5-{hashlib.md5(data).hexdigest()}-{len(data)}"
    wait_for(lambda: wanted in browser.current_url, timeout=90)
    wait_for(lambda: browser.find_element(By.ID, "upload-state").get_attribute(
        "data-status") == "complete", timeout=180, interval=1)
    rows = int(browser.find_element(By.ID, "rows").text)
    assert rows == data.count(b"\n") - 1  # every line of the file, once
    browser.get_log("browser")  # the blocked chunks were logged as failed requests: drain


def _change_a_channel_and_send_a_test(browser: Any, emulators: StackConfig) -> None:
    from selenium.webdriver.common.by import By

    browser.find_element(By.ID, "nav-settings").click()
    wait_for(lambda: browser.find_elements(By.ID, "form-notifications"), timeout=30)
    browser.find_element(By.NAME, "chnew_id").send_keys("frontoffice")
    browser.find_element(By.NAME, "chnew_recipients").send_keys("not an address")
    browser.find_element(By.ID, "save-notifications").click()
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".field-error"), timeout=30)
    error = browser.find_element(By.CSS_SELECTOR, ".field-error")
    assert error.get_attribute("data-field") == "ch0_recipients"
    browser.get_log("browser")  # that 400 is the expected answer to a bad address: drain it
    browser.find_element(By.NAME, "ch0_recipients").clear()
    browser.find_element(By.NAME, "ch0_recipients").send_keys("office@riverside.example")
    browser.find_element(By.ID, "save-notifications").click()
    wait_for(lambda: "done=saved" in browser.current_url, timeout=30)
    browser.find_element(By.CSS_SELECTOR, "button[data-test-channel='frontoffice']").click()
    wait_for(lambda: "done=test-sent" in browser.current_url, timeout=30)

    def test_mail() -> bool:
        import email
        import email.policy

        for path in emulators.mail_dir.glob("*.eml"):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if message["To"] == "office@riverside.example" and "frontoffice works" in str(
                    message["Subject"]):
                return True
        return False

    wait_for(test_mail, timeout=60, interval=1)
