"""Single sign-on's round trip against a real HTTP OpenID Connect provider (the local
stand-in, `stack/fake_idp.py`, RS256-signed tokens) through the real relying-party adapter;
Identity Platform and the people are in-memory here (their real run is on the emulators in
`tests/integration/test_sso_on_emulators.py`).

Hostile cases: a replayed callback, a code used twice, another browser's state, a token for
another client, from another issuer, signed by an unpublished key, with `alg: none`, without
our nonce, an unverified or foreign e-mail, an uninvited or disabled person, another
provider identity already linked, a provider that is down, and junk in every answer."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.unit.sso_fixtures import REDIRECT, authorize
from upstream.adapters.oidc_provider import OidcProvider
from upstream.domain.practice import sso
from upstream.domain.practice.sso import FederatedPerson, SsoError
from upstream.ports import ServiceUnavailable
from upstream.services import sso_sign_in
from upstream.services.sso_sign_in import SsoDeps

SECRET = b"s" * 32
NOW = datetime.now(UTC)


def _trip(deps: SsoDeps, email: str) -> tuple[dict[str, str], str]:
    begun = sso_sign_in.start(deps, "acme", "/alerts", NOW, SECRET)
    assert begun is not None
    url, sealed = begun
    return authorize(url, email), sealed


def test_an_invited_person_signs_in_and_is_linked_once(world: Any) -> None:
    deps, people, idp = world
    query, sealed = _trip(deps, "Biller@Clinic.Example")
    ticket, signed = sso_sign_in.finish(deps, query, sealed, NOW, SECRET)
    assert (ticket.target, signed.uid, signed.email) == ("/alerts", "u-b",
                                                         "biller@clinic.example")
    assert people.links == [("u-b", idp.subject("biller@clinic.example"))]
    people.members[("acme", "biller@clinic.example")] = FederatedPerson(
        "u-b", False, idp.subject("biller@clinic.example"))
    query, sealed = _trip(deps, "biller@clinic.example")
    assert sso_sign_in.finish(deps, query, sealed, NOW, SECRET)[1].uid == "u-b"
    assert len(people.links) == 1  # the second sign-in did not link again


def test_the_authorization_request_carries_pkce_state_and_nonce(world: Any) -> None:
    deps, _, _ = world
    begun = sso_sign_in.start(deps, "acme", "/", NOW, SECRET)
    assert begun is not None
    url, sealed = begun
    asked = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    ticket = sso.unseal(SECRET, sealed, asked["state"], NOW)
    assert asked["code_challenge"] == ticket.challenge and asked["nonce"] == ticket.nonce
    assert asked["code_challenge_method"] == "S256" and asked["redirect_uri"] == REDIRECT
    assert ticket.verifier not in url  # the verifier never leaves our cookie
    assert sso_sign_in.start(deps, "beta", "/", NOW, SECRET) is None  # no provider
    assert sso_sign_in.start(deps, "nobody", "/", NOW, SECRET) is None


def test_a_replayed_callback_is_refused(world: Any) -> None:
    deps, _, _ = world
    query, sealed = _trip(deps, "biller@clinic.example")
    sso_sign_in.finish(deps, query, sealed, NOW, SECRET)
    with pytest.raises(SsoError, match="used before"):
        sso_sign_in.finish(deps, query, sealed, NOW, SECRET)


def test_a_code_spent_elsewhere_is_refused_by_the_provider(world: Any) -> None:
    deps, _, _ = world
    query, sealed = _trip(deps, "biller@clinic.example")
    ticket = sso.unseal(SECRET, sealed, query["state"], NOW)
    endpoints = deps.provider.endpoints(sso.settings_of(deps.tenant("acme")))
    deps.provider.exchange(endpoints, sso.settings_of(deps.tenant("acme")), "client-secret-1",
                           query["code"], ticket.verifier, REDIRECT)
    with pytest.raises(SsoError, match="invalid_grant"):
        sso_sign_in.finish(deps, query, sealed, NOW, SECRET)


def test_another_browsers_state_is_refused(world: Any) -> None:
    deps, _, _ = world
    attacker_query, _ = _trip(deps, "biller@clinic.example")
    _, victim_cookie = sso_sign_in.start(deps, "acme", "/", NOW, SECRET)  # type: ignore[misc]
    with pytest.raises(SsoError, match="state mismatch"):
        sso_sign_in.finish(deps, attacker_query, victim_cookie, NOW, SECRET)
    with pytest.raises(SsoError, match="state cookie missing"):
        sso_sign_in.finish(deps, attacker_query, None, NOW, SECRET)


@pytest.mark.parametrize("email,reason", [
    ("stranger@clinic.example", "not an active person"),  # invited to another practice
    ("off@clinic.example", "not an active person"),  # disabled
    ("unverified@clinic.example", "not verified"),
    ("other@elsewhere.example", "outside the practice's domains")])
def test_people_the_provider_cannot_vouch_for(world: Any, email: str, reason: str) -> None:
    deps, people, _ = world
    query, sealed = _trip(deps, email)
    with pytest.raises(SsoError, match=reason):
        sso_sign_in.finish(deps, query, sealed, NOW, SECRET)
    assert people.links == []


@pytest.mark.parametrize("override,reason", [
    ({"aud": "another-client"}, "InvalidAudience"),
    ({"iss": "https://evil.example"}, "InvalidIssuer"),
    ({"exp": 1_000_000}, "ExpiredSignature"),
    ({"nonce": None}, "nonce"),
    ({"nonce": "forged"}, "nonce"),
    ({"iat": None}, "MissingRequiredClaim")])
def test_tokens_that_do_not_verify(world: Any, override: dict[str, Any], reason: str) -> None:
    deps, _, idp = world
    query, sealed = _trip(deps, "biller@clinic.example")
    idp.claims_override = override
    with pytest.raises(SsoError, match=reason):
        sso_sign_in.finish(deps, query, sealed, NOW, SECRET)


def test_a_token_signed_by_a_key_the_provider_does_not_publish(world: Any) -> None:
    deps, _, idp = world
    query, sealed = _trip(deps, "biller@clinic.example")
    idp.sign_with_unpublished_key = True
    with pytest.raises(SsoError, match="InvalidSignature"):
        sso_sign_in.finish(deps, query, sealed, NOW, SECRET)


def test_unsigned_and_hmac_tokens_are_refused_before_any_key(world: Any) -> None:
    deps, _, _ = world
    settings = sso.settings_of(deps.tenant("acme"))
    endpoints = deps.provider.endpoints(settings)
    body = base64.urlsafe_b64encode(json.dumps({"sub": "x"}).encode()).decode().rstrip("=")
    for alg in ("none", "HS256"):
        header = base64.urlsafe_b64encode(json.dumps({"alg": alg}).encode()).decode()
        with pytest.raises(SsoError, match="algorithm"):
            deps.provider.verify(endpoints, settings, f"{header.rstrip('=')}.{body}.")
    with pytest.raises(SsoError, match="malformed"):
        deps.provider.verify(endpoints, settings, "not-a-token")


def test_another_provider_identity_linked_to_the_person_is_refused(world: Any) -> None:
    deps, people, _ = world
    people.members[("acme", "biller@clinic.example")] = FederatedPerson("u-b", False,
                                                                        "someone-else")
    query, sealed = _trip(deps, "biller@clinic.example")
    with pytest.raises(SsoError, match="another provider identity"):
        sso_sign_in.finish(deps, query, sealed, NOW, SECRET)


def test_identity_platform_refusing_is_a_refusal(world: Any) -> None:
    deps, _, _ = world
    query, sealed = _trip(deps, "biller@clinic.example")
    deps.toolkit.refuse = "FEDERATED_USER_ID_ALREADY_LINKED"
    try:
        with pytest.raises(SsoError, match="ALREADY_LINKED"):
            sso_sign_in.finish(deps, query, sealed, NOW, SECRET)
    finally:
        deps.toolkit.refuse = None


def test_the_provider_saying_no_or_being_down(world: Any) -> None:
    deps, _, idp = world
    query, sealed = _trip(deps, "biller@clinic.example")
    with pytest.raises(SsoError, match="access_denied"):
        sso_sign_in.finish(deps, {"state": query["state"], "error": "access_denied"}, sealed,
                           NOW, SECRET)
    query, sealed = _trip(deps, "biller@clinic.example")
    idp.faults.append(503)
    with pytest.raises(ServiceUnavailable):
        sso_sign_in.finish(deps, query, sealed, NOW, SECRET)
    query2, sealed2 = _trip(deps, "biller@clinic.example")
    idp.faults.append(400)
    with pytest.raises(SsoError):
        sso_sign_in.finish(deps, query2, sealed2, NOW, SECRET)


def test_a_provider_that_does_not_answer_is_unavailable() -> None:
    settings = sso.SsoSettings(issuer="http://127.0.0.1:9", client_id="c",
                               domains=["a.example"])
    with pytest.raises(ServiceUnavailable):
        OidcProvider().endpoints(settings)


class _Canned(requests.Session):
    """A provider answering whatever a test gives (junk, huge, another issuer)."""

    def __init__(self, body: bytes, status: int = 200) -> None:
        super().__init__()
        self.body, self.status = body, status

    def request(self, method: str | bytes, url: str | bytes,  # type: ignore[override]
                *args: Any, **kwargs: Any) -> requests.Response:
        import io

        response = requests.Response()
        response.status_code = self.status
        response.raw = io.BytesIO(self.body)
        return response


@pytest.mark.parametrize("body,reason", [
    (b"<html>", "not a JSON object"), (b"[1]", "not a JSON object"),
    (b"\xff\xfe", "not a JSON object"), (b" " * 300_000, "too large"),
    (json.dumps({"issuer": "https://evil.example"}).encode(), "another issuer"),
    (json.dumps({"issuer": "https://i.example"}).encode(), "lacks")])
def test_junk_discovery_documents(body: bytes, reason: str) -> None:
    settings = sso.SsoSettings(issuer="https://i.example", client_id="c",
                               domains=["a.example"])
    with pytest.raises(SsoError, match=reason):
        OidcProvider(_Canned(body)).endpoints(settings)


def test_a_token_answer_without_an_id_token() -> None:
    from upstream.adapters.oidc_provider import Endpoints

    settings = sso.SsoSettings(issuer="https://i.example", client_id="c",
                               domains=["a.example"])
    endpoints = Endpoints("https://i.example", "https://i.example/a", "https://i.example/t",
                          "https://i.example/k")
    for body in (b"{}", json.dumps({"id_token": 5}).encode(),
                 json.dumps({"id_token": "x" * 20000}).encode()):
        with pytest.raises(SsoError, match="no ID token"):
            OidcProvider(_Canned(body)).exchange(endpoints, settings, "s", "c", "v", "r")
    with pytest.raises(SsoError, match="key set unusable"):
        OidcProvider(_Canned(b'{"keys": [{"kty": "nope"}]}')).verify(
            endpoints, settings,
            "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.eyJzdWIiOiJ4In0.c2ln")
