"""Single sign-on's test world: a real HTTP OpenID Connect provider (the local stand-in,
`stack/fake_idp.py`), in-memory Identity Platform people, and the provider page's answer
as a browser would get it. Registered as a pytest plugin in `tests/conftest.py`."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from upstream.adapters.identity_toolkit import SignedIn, SignInRefused
from upstream.adapters.oidc_provider import OidcProvider
from upstream.domain.practice.sso import FederatedPerson
from upstream.services.sso_sign_in import SsoDeps
from upstream.stack.fake_idp import FakeIdp
from upstream.stack.quiet_server import serve

REDIRECT = "http://dashboard.test/login/sso/callback"


@dataclass
class People:
    """The invited people of the practices, as Identity Platform would hold them."""

    members: dict[tuple[str, str], FederatedPerson] = field(default_factory=dict)
    links: list[tuple[str, str]] = field(default_factory=list)

    def federated_person(self, customer_id: str, email: str,
                         provider: str) -> FederatedPerson | None:
        return self.members.get((customer_id, email))

    def custom_token(self, uid: str, claims: dict[str, Any] | None = None) -> str:
        return f"custom:{uid}:{(claims or {}).get('upstream_2fa', '')}"


@dataclass
class Toolkit:
    people: People
    refuse: str | None = None

    def sign_in_with_custom_token(self, token: str) -> SignedIn:
        _, uid, how = token.split(":")
        return SignedIn(f"marked:{uid}:{how}" if how else f"own:{uid}", "", uid)

    def sign_in_with_idp(self, provider: str, provider_token: str, nonce: str,
                         request_uri: str, link_to: str | None = None) -> SignedIn:
        if self.refuse:
            raise SignInRefused(self.refuse)
        claims = json.loads(base64.urlsafe_b64decode(provider_token.split(".")[1] + "=="))
        uid = link_to.split(":")[1] if link_to else next(
            (p.uid for p in self.people.members.values() if p.linked_subject == claims["sub"]),
            "stray")
        if link_to:
            self.people.links.append((uid, claims["sub"]))
        return SignedIn(f"session-token:{uid}", claims["email"], uid)


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeIdp]:
    app = FakeIdp("http://placeholder", {}, {})
    server = serve(app, "127.0.0.1", 0)
    app.issuer = f"http://127.0.0.1:{server.port}"
    app.clients = {"upstream-web": ("client-secret-1", REDIRECT)}
    yield app
    server.shutdown()


@pytest.fixture
def world(idp: FakeIdp) -> Iterator[tuple[SsoDeps, People, FakeIdp]]:
    idp.faults.clear()
    idp.claims_override = {}
    idp.sign_with_unpublished_key = False
    idp.people = {"biller@clinic.example": ("idp-pass", True),
                  "stranger@clinic.example": ("idp-pass", True),
                  "unverified@clinic.example": ("idp-pass", False),
                  "off@clinic.example": ("idp-pass", True),
                  "other@elsewhere.example": ("idp-pass", True)}
    people = People({("acme", "biller@clinic.example"): FederatedPerson("u-b", False, None),
                     ("acme", "off@clinic.example"): FederatedPerson("u-off", True, None),
                     ("acme", "other@elsewhere.example"): FederatedPerson("u-o", False, None),
                     ("beta", "stranger@clinic.example"): FederatedPerson("u-s", False, None)})
    tenants: dict[str, dict[str, Any]] = {"acme": {"status": "active", "sso": {
        "issuer": idp.issuer, "client_id": "upstream-web", "domains": ["clinic.example"]}},
        "beta": {"status": "active"}}
    used: set[str] = set()

    def first_use(key: str, expires: datetime) -> bool:
        fresh = key not in used
        used.add(key)
        return fresh

    deps = SsoDeps(provider=OidcProvider(), people=people, toolkit=Toolkit(people),
                   tenant=tenants.get, client_secret=lambda c: "client-secret-1",
                   first_use=first_use, dashboard_url="http://dashboard.test/")
    yield deps, people, idp


def authorize(url: str, email: str, password: str = "idp-pass",
              redirect: str = REDIRECT) -> dict[str, str]:
    """The person at the provider's page: the callback's query it sends the browser back with."""
    parts = urlsplit(url)
    asked = {k: v[0] for k, v in parse_qs(parts.query).items()}
    answer = requests.post(f"{parts.scheme}://{parts.netloc}{parts.path}",
                           data={**asked, "email": email, "password": password}, timeout=10,
                           allow_redirects=False)
    assert answer.status_code == 302, answer.text
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect
    return {k: v[0] for k, v in parse_qs(location.query).items()}
