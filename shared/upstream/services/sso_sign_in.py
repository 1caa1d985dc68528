"""Single sign-on, the use case: start a round trip to the practice's OpenID Connect provider,
and finish it into the invited person's Identity Platform ID token (Contract 6).

Finishing checks, in this order, and stops at the first that fails: the sealed state (this
browser started this round trip, within ten minutes), the state used once (a replayed
callback is refused even where a provider would honour a code twice), the practice's provider
still configured, the code exchanged with the client secret and PKCE verifier, the ID token's
signature and claims (`domain/practice/sso.py`), the address an active person of that same
practice, and the provider subject the one linked to that person (or none yet: then it is
linked to exactly them, through their own custom token, never by Identity Platform matching
e-mail addresses). Only then is Identity Platform asked for the session's ID token.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlencode

from upstream.adapters.identity_toolkit import SignedIn, SignInRefused
from upstream.domain.practice import sso
from upstream.domain.practice.sso import FederatedPerson, SsoError, SsoSettings, Ticket
from upstream.services.second_factor_sign_in import SecondFactorRefused, mint

CALLBACK_PATH = "/login/sso/callback"


class Endpoints(Protocol):
    """What the start needs of the provider's discovered endpoints (the rest is the
    adapter's own business)."""

    @property
    def authorization(self) -> str: ...


class Provider(Protocol):
    def endpoints(self, settings: SsoSettings) -> Endpoints: ...

    def exchange(self, endpoints: Any, settings: SsoSettings, client_secret: str, code: str,
                 verifier: str, redirect_uri: str) -> str: ...

    def verify(self, endpoints: Any, settings: SsoSettings,
               id_token: str) -> dict[str, Any]: ...


class FederatedPeople(Protocol):
    def federated_person(self, customer_id: str, email: str,
                         provider: str) -> FederatedPerson | None: ...

    def custom_token(self, uid: str, claims: dict[str, Any] | None = None) -> str: ...


class IdpSignIn(Protocol):
    def sign_in_with_idp(self, provider: str, provider_token: str, nonce: str,
                         request_uri: str, link_to: str | None = None) -> SignedIn: ...

    def sign_in_with_custom_token(self, token: str) -> SignedIn: ...


@dataclass(frozen=True)
class SsoDeps:
    provider: Provider
    people: FederatedPeople
    toolkit: IdpSignIn
    tenant: Callable[[str], Mapping[str, Any] | None]
    client_secret: Callable[[str], str | None]  # customer → the provider's client secret
    # True the first time a state is seen (an idempotency key held past the state's expiry).
    first_use: Callable[[str, datetime], bool]
    dashboard_url: str

    @property
    def redirect_uri(self) -> str:
        return self.dashboard_url.rstrip("/") + CALLBACK_PATH


def configured(deps: SsoDeps, customer_id: str) -> SsoSettings | None:
    """The practice's provider; None without one, or for a practice that is not active."""
    tenant = dict(deps.tenant(customer_id) or {})
    if str(tenant.get("status") or "active") != "active":
        return None
    return sso.settings_of(tenant)


def start(deps: SsoDeps, customer_id: str, target: str, now: datetime,
          secret: bytes) -> tuple[str, str] | None:
    """(the provider's authorization URL, the sealed state for the cookie), or None when the
    practice has no single sign-on (or no such practice: the same answer)."""
    settings = configured(deps, customer_id)
    if settings is None:
        return None
    ticket = sso.new_ticket(customer_id, target, now)
    endpoints = deps.provider.endpoints(settings)
    query = urlencode({"response_type": "code", "client_id": settings.client_id,
                       "redirect_uri": deps.redirect_uri, "scope": "openid email",
                       "state": ticket.state, "nonce": ticket.nonce,
                       "code_challenge": ticket.challenge, "code_challenge_method": "S256"})
    separator = "&" if "?" in endpoints.authorization else "?"
    return f"{endpoints.authorization}{separator}{query}", sso.seal(secret, ticket)


def finish(deps: SsoDeps, query: Mapping[str, str], sealed: str | None, now: datetime,
           secret: bytes) -> tuple[Ticket, SignedIn]:
    """The callback's query and the state cookie → the person's Identity Platform sign-in,
    or SsoError with the reason for the log."""
    ticket = sso.unseal(secret, sealed, query.get("state"), now)
    if query.get("error"):
        raise SsoError(f"provider answered {str(query['error'])[:40]}")
    code = query.get("code", "")
    if not code or len(code) > 2048:
        raise SsoError("no code")
    if not deps.first_use(f"sso-state|{ticket.state}", ticket.expires):
        raise SsoError("state used before")
    settings = configured(deps, ticket.customer_id)
    if settings is None:
        raise SsoError("single sign-on no longer configured")
    client_secret = deps.client_secret(ticket.customer_id)
    if not client_secret:
        raise SsoError("no client secret set")
    endpoints = deps.provider.endpoints(settings)
    id_token = deps.provider.exchange(endpoints, settings, client_secret, code,
                                      ticket.verifier, deps.redirect_uri)
    claims = deps.provider.verify(endpoints, settings, id_token)
    email = sso.vouched_email(claims, ticket, settings)
    return ticket, _sign_in(deps, ticket, str(claims["sub"]), email, id_token)


def _sign_in(deps: SsoDeps, ticket: Ticket, subject: str, email: str,
             id_token: str) -> SignedIn:
    provider = sso.provider_id(ticket.customer_id)
    person = deps.people.federated_person(ticket.customer_id, email, provider)
    if person is None or person.disabled:
        raise SsoError("not an active person of the practice")
    if person.linked_subject not in (None, subject):
        raise SsoError("another provider identity is linked to this person")
    try:
        if person.linked_subject is None:
            own = deps.toolkit.sign_in_with_custom_token(deps.people.custom_token(person.uid))
            signed = deps.toolkit.sign_in_with_idp(provider, id_token, ticket.nonce,
                                                   deps.redirect_uri, link_to=own.id_token)
        else:
            signed = deps.toolkit.sign_in_with_idp(provider, id_token, ticket.nonce,
                                                   deps.redirect_uri)
    except SignInRefused as exc:
        raise SsoError(f"Identity Platform refused: {exc.reason}") from None
    if signed.uid and signed.uid != person.uid:
        raise SsoError("Identity Platform signed in someone else")
    # The practice's provider stands in for our second step: the session says so.
    try:
        marked = mint(deps.people, deps.toolkit, person.uid, "sso")
    except SecondFactorRefused as exc:
        raise SsoError(exc.reason) from None
    return SignedIn(marked.id_token, email, person.uid)
