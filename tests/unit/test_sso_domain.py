"""Single sign-on's pure parts: the practice's provider settings, the sealed round-trip state
(any change to it refused), PKCE (RFC 7636's own example) and the ID token's claims."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from upstream.domain.practice import sso
from upstream.domain.practice.sso import SsoError, SsoSettings, Ticket
from upstream.services.tenants import sso_client_secret

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SECRET = b"k" * 32
SETTINGS = SsoSettings(issuer="https://idp.clinic.example", client_id="upstream-web",
                       domains=["clinic.example"])


def _ticket() -> Ticket:
    return sso.new_ticket("acme", "/alerts", NOW)


def _claims(ticket: Ticket, **changes: object) -> dict[str, object]:
    claims: dict[str, object] = {"sub": "idp-1", "aud": "upstream-web", "nonce": ticket.nonce,
                                 "email": "Biller@Clinic.Example", "email_verified": True}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def test_settings_accept_https_and_loopback_http_only() -> None:
    assert SsoSettings(issuer="http://127.0.0.1:9000/", client_id="c",
                       domains=["a.example"]).issuer == "http://127.0.0.1:9000"
    assert SsoSettings(issuer="http://localhost:1", client_id="c", domains=["a.example"])
    for issuer in ("http://idp.example", "ftp://idp.example", "https://idp.example/?x=1",
                   "https://user:pw@idp.example", "https://idp.example/#f", "javascript:x",
                   "https://"):
        with pytest.raises(ValidationError):
            SsoSettings(issuer=issuer, client_id="c", domains=["a.example"])


@pytest.mark.parametrize("domains", [[], ["localhost"], ["a..example"], ["-a.example"],
                                     ["a.example/x"], ["*.a.example"], ["a" * 300 + ".com"]])
def test_settings_refuse_what_is_not_a_domain(domains: list[str]) -> None:
    with pytest.raises(ValidationError):
        SsoSettings(issuer="https://idp.example", client_id="c", domains=domains)


def test_settings_refuse_unknown_fields_and_control_characters() -> None:
    with pytest.raises(ValidationError):
        SsoSettings.model_validate({"issuer": "https://i.example", "client_id": "c",
                                    "domains": ["a.example"], "client_secret": "no"})
    with pytest.raises(ValidationError):
        SsoSettings(issuer="https://i.example", client_id="c\nd", domains=["a.example"])


def test_domains_are_lower_cased_and_deduplicated() -> None:
    made = SsoSettings(issuer="https://i.example", client_id="c",
                       domains=[" Clinic.Example", "clinic.example", "b.example"])
    assert made.domains == ["b.example", "clinic.example"]


def test_a_stored_setting_the_model_refuses_is_no_single_sign_on() -> None:
    assert sso.settings_of({}) is None
    assert sso.settings_of({"sso": None}) is None
    assert sso.settings_of({"sso": {"issuer": "http://evil.example", "client_id": "c",
                                    "domains": ["a.example"]}}) is None
    assert sso.settings_of({"sso": SETTINGS.model_dump()}) == SETTINGS


def test_pkce_challenge_is_rfc_7636_appendix_b() -> None:
    ticket = Ticket("acme", "s", "n", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "/", NOW)
    assert ticket.challenge == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_a_sealed_ticket_comes_back_whole() -> None:
    ticket = _ticket()
    assert sso.unseal(SECRET, sso.seal(SECRET, ticket), ticket.state, NOW) == \
        Ticket(ticket.customer_id, ticket.state, ticket.nonce, ticket.verifier, ticket.target,
               ticket.expires.replace(microsecond=0))
    assert len(ticket.verifier) >= 43  # RFC 7636 4.1


def test_tickets_are_fresh_each_time() -> None:
    first, second = _ticket(), _ticket()
    assert len({first.state, first.nonce, first.verifier, second.state, second.nonce,
                second.verifier}) == 6


@pytest.mark.parametrize("case", ["no cookie", "expired", "other state", "no state",
                                  "other key", "session cookie"])
def test_a_ticket_is_refused(case: str) -> None:
    ticket = _ticket()
    sealed: str | None = sso.seal(SECRET, ticket)
    state: str | None = ticket.state
    now, secret = NOW, SECRET
    if case == "no cookie":
        sealed = None
    elif case == "expired":
        now = NOW + timedelta(minutes=sso.STATE_MINUTES, seconds=1)
    elif case == "other state":
        state = _ticket().state
    elif case == "no state":
        state = None
    elif case == "other key":
        secret = b"x" * 32
    elif case == "session cookie":  # a session cookie is not a ticket, even signed alike
        from upstream.domain import session as sessions

        sealed, _ = sessions.issue(SECRET, "acme", "k1", ["read"], NOW)
    with pytest.raises(SsoError):
        sso.unseal(secret, sealed, state, now)


@given(position=st.integers(min_value=0, max_value=10_000),
       replacement=st.characters(codec="ascii"))
def test_any_change_to_a_sealed_ticket_is_refused(position: int, replacement: str) -> None:
    ticket = _ticket()
    sealed = sso.seal(SECRET, ticket)
    index = position % len(sealed)
    changed = sealed[:index] + replacement + sealed[index + 1:]
    if changed == sealed:
        return
    with pytest.raises(SsoError):
        sso.unseal(SECRET, changed, ticket.state, NOW)


@given(junk=st.text(max_size=3000))
def test_junk_in_the_cookie_is_refused_not_raised(junk: str) -> None:
    with pytest.raises(SsoError):
        sso.unseal(SECRET, junk, "state", NOW)


def test_the_vouched_address_is_lower_cased() -> None:
    ticket = _ticket()
    assert sso.vouched_email(_claims(ticket), ticket, SETTINGS) == "biller@clinic.example"


@pytest.mark.parametrize("changes", [
    {"nonce": None}, {"nonce": "another"}, {"email": None}, {"email": ""},
    {"email_verified": None}, {"email_verified": False}, {"email_verified": "true"},
    {"email": "biller@other.example"}, {"email": "biller@sub.clinic.example"},
    {"email": "biller@clinic.example.evil.example"}, {"sub": None}, {"sub": ""},
    {"aud": ["upstream-web", "another"]}, {"email": "x" * 250 + "@clinic.example"}])
def test_claims_that_do_not_vouch_for_a_person(changes: dict[str, object]) -> None:
    ticket = _ticket()
    with pytest.raises(SsoError):
        sso.vouched_email(_claims(ticket, **changes), ticket, SETTINGS)


def test_several_audiences_need_the_authorised_party_to_be_us() -> None:
    ticket = _ticket()
    claims = _claims(ticket, aud=["upstream-web", "another"], azp="upstream-web")
    assert sso.vouched_email(claims, ticket, SETTINGS) == "biller@clinic.example"


def test_provider_ids_are_ours_per_practice() -> None:
    assert sso.provider_id("acme") == "oidc.upstream-acme"
    assert sso_client_secret("acme") == "sso-client-secret-acme"
