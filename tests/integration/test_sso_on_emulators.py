"""Single sign-on through the running stack: the owner configures the practice's provider on
the settings page (the secret into the stack's secret store), an invited person signs in at
the provider (the local OIDC stand-in, RS256) and lands in the dashboard as themselves; the
Auth emulator links the provider identity to exactly that person. Refused: the callback
replayed, an uninvited address, a disabled person, another practice's person; and with
single sign-on required, the owner's right password."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
import requests
from firebase_admin import auth

from tests.conftest import emulator_db
from tests.integration.test_api_on_emulators import _seed
from tests.integration.test_people_on_emulators import _form_token, _identity
from tests.unit.sso_fixtures import authorize
from upstream.adapters.firestore_store import CUSTOMERS
from upstream.adapters.secrets import LocalFileSecretStore
from upstream.domain import session as sessions
from upstream.domain.practice import sso
from upstream.services.tenants import sso_client_secret
from upstream.stack import manager
from upstream.stack.config import StackConfig
from upstream.stack.fake_idp import FakeIdp
from upstream.stack.quiet_server import serve

pytestmark = pytest.mark.emulators


@pytest.fixture
def provider(clean_stack: StackConfig) -> Iterator[FakeIdp]:
    app = FakeIdp("http://placeholder", {}, {})
    server = serve(app, "127.0.0.1", 0)
    app.issuer = f"http://127.0.0.1:{server.port}"
    yield app
    server.shutdown()


def _round_trip(browser: requests.Session, base: str, practice: str,
                email: str) -> requests.Response:
    started = browser.get(base + "/login/sso", params={"practice": practice, "next": "/"},
                          timeout=10)
    assert started.status_code == 200, started.text
    link = re.search(r'id="sso-continue" href="([^"]+)"', started.text)
    assert link
    query = authorize(html.unescape(link.group(1)), email,
                      redirect=base + "/login/sso/callback")
    return browser.get(base + "/login/sso/callback?" + urlencode(query), timeout=10,
                       allow_redirects=False)


def test_single_sign_on_through_the_stack(clean_stack: StackConfig, provider: FakeIdp,
                                          unique: str) -> None:
    identity, _ = _identity(clean_stack)
    db = emulator_db(clean_stack)
    acme, beta = _seed(db, f"acme-{unique}", unique), _seed(db, f"beta-{unique}", unique)
    practice = acme["customer"]
    base = manager.function_urls(clean_stack)["api"].rstrip("/")
    owner, biller = f"o-{unique}@acme.test", f"b-{unique}@acme.test"
    off, stranger = f"off-{unique}@acme.test", f"s-{unique}@acme.test"
    nobody = f"n-{unique}@acme.test"
    identity.add(practice, owner, "owner", "password-123")
    identity.add(practice, biller, "biller", None)  # invited: no password, never set one
    identity.add(practice, off, "viewer", None)
    identity.disable(practice, off)
    identity.add(beta["customer"], stranger, "owner", None)  # the other practice's person
    provider.clients = {"upstream-web": (f"idp-secret-{unique}", base + "/login/sso/callback")}
    provider.people = {who: ("idp-pass", True) for who in (owner, biller, off, stranger,
                                                           nobody)}

    admin = requests.Session()
    admin.post(base + "/login", timeout=10, data={
        "email": owner, "password": "password-123", "form_token": _form_token(admin,
                                                                              base + "/login")})
    settings = admin.get(base + "/settings", timeout=10)
    assert base + "/login/sso/callback" in settings.text  # what to register at the provider
    csrf = re.search(r'name="csrf" value="([^"]+)"', settings.text)
    assert csrf
    saved = admin.post(base + "/settings/sso", timeout=10, allow_redirects=False, data={
        "csrf": csrf.group(1), "sso_issuer": provider.issuer, "sso_client_id": "upstream-web",
        "sso_client_secret": f"idp-secret-{unique}", "sso_domains": "acme.test"})
    assert saved.status_code == 303, saved.text
    tenant = db.collection(CUSTOMERS).document(practice).get().to_dict() or {}
    assert tenant["sso"]["issuer"] == provider.issuer
    assert f"idp-secret-{unique}" not in str(tenant)
    assert LocalFileSecretStore(clean_stack.secrets_file).get(
        sso_client_secret(practice)) == f"idp-secret-{unique}".encode()

    person = requests.Session()
    done = _round_trip(person, base, practice, biller)
    assert done.status_code == 303 and done.headers["Location"] == "/", done.text
    assert "SameSite=Lax" in done.headers["Set-Cookie"]
    home = person.get(base + "/", timeout=10)
    assert home.status_code == 200 and f"{biller} (biller)" in home.text
    linked = identity.federated_person(practice, biller, sso.provider_id(practice))
    assert linked and linked.linked_subject == provider.subject(biller)
    # The callback again, from the same browser: the state was spent.
    replay = person.get(done.url, timeout=10, allow_redirects=False)
    assert replay.status_code == 401
    # Linked already: the next sign-in goes straight through.
    assert _round_trip(requests.Session(), base, practice, biller).status_code == 303

    refusals = {who: _round_trip(requests.Session(), base, practice, who)
                for who in (nobody, off, stranger)}
    assert {who: r.status_code for who, r in refusals.items()} == {
        nobody: 401, off: 401, stranger: 401}
    assert all(f"{sessions.COOKIE}=" not in r.headers.get("Set-Cookie", "")
               for r in refusals.values())
    with pytest.raises(auth.UserNotFoundError):  # an uninvited address made no account
        auth.get_user_by_email(nobody, app=identity._app)

    required = admin.post(base + "/settings/sso", timeout=10, allow_redirects=False, data={
        "csrf": csrf.group(1), "sso_issuer": provider.issuer, "sso_client_id": "upstream-web",
        "sso_domains": "acme.test", "sso_required": "on"})
    assert required.status_code == 303
    again = requests.Session()
    refused = again.post(base + "/login", timeout=10, allow_redirects=False, data={
        "email": owner, "password": "password-123",
        "form_token": _form_token(again, base + "/login")})
    assert refused.status_code == 403 and "single sign-on" in refused.text
    assert _round_trip(requests.Session(), base, practice, owner).status_code == 303

    since = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    exported = admin.get(base + "/audit.csv", params={"since": since}, timeout=10)
    assert exported.status_code == 200
    assert exported.text.count("GET /login/sso/callback") == 3  # biller twice, owner once
    assert f"user:{biller}" in exported.text and "idp-secret" not in exported.text
