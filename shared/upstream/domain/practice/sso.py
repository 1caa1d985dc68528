"""Single sign-on with the practice's own OpenID Connect provider (Contract 6): what a
practice configures, the round trip's sealed state, and what an ID token must say before a
person is let in.

The dashboard is the relying party (OpenID Connect Core 1.0, authorization code flow, section
3.1) with PKCE (RFC 7636, S256): the browser only ever carries a one-time code, which is
useless without the verifier sealed in our cookie and the client secret in Secret Manager.
Identity Platform then signs the person in with the provider's ID token (`signInWithIdp`),
so the session is the same Identity Platform session every other sign-in makes.

The state, nonce and verifier live in one short-lived cookie sealed with the dashboard's
session key under its own purpose (RFC 6749 section 10.12: the state binds the callback to the
browser that started it; OIDC Core 3.1.2.1: the nonce binds the ID token to it). A sealed
state cannot pass for a session cookie or a CSRF token: its MAC covers the purpose.

An ID token is trusted for a person only when all of these hold (OIDC Core 3.1.3.7, checked
after the adapter verified the signature, issuer, audience and expiry): our nonce, a verified
e-mail address, in one of the practice's own domains. The address must then belong to an
invited, active person of that same practice: an IdP cannot create people, only vouch for
the ones the practice invited.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from upstream.domain import sealed

# The round trip through the IdP: a person who types a password there and answers a second
# factor needs minutes, not hours; a stolen state cookie is dead after this.
STATE_MINUTES = 10
STATE_COOKIE = "upstream_sso"
_PURPOSE = "sso-state"
# RFC 7636 4.1: a verifier of 43–128 characters; 32 random bytes give 43.
_VERIFIER_BYTES = 32
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_LOOPBACK_NAMES = {"localhost"}

Domain = Annotated[str, StringConstraints(min_length=3, max_length=253, to_lower=True,
                                          strip_whitespace=True)]


class SsoError(ValueError):
    """The sign-in was refused; `reason` is for the log (no address, no token), the person
    reads one answer whatever it was."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SsoSettings(BaseModel):
    """A practice's OpenID Connect provider. The client secret is not here: it is a secret
    (`services/tenants.sso_client_secret`, in Secret Manager), set from the settings page."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    issuer: str = Field(min_length=8, max_length=300)
    client_id: str = Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")
    # The e-mail domains the provider may vouch for (its own staff's); at least one.
    domains: list[Domain] = Field(min_length=1, max_length=20)
    # When set, the practice's people sign in through the provider only (no password, no
    # e-mailed link): the practice's IdP then decides who leaves.
    required: bool = False

    @field_validator("issuer")
    @classmethod
    def _issuer_https(cls, value: str) -> str:
        """OIDC Discovery 1.0 section 3: the issuer is an https URL without query or fragment.
        Plain http only on this machine's loopback (the local stand-in IdP)."""
        parts = urlsplit(value)
        host = parts.hostname or ""
        if parts.query or parts.fragment or parts.username or parts.password or not host:
            raise ValueError("an https URL without query, fragment or user")
        if parts.scheme != "https" and not (parts.scheme == "http" and _loopback(host)):
            raise ValueError("an https URL (http only for a provider on this machine)")
        return value.rstrip("/")

    @field_validator("domains")
    @classmethod
    def _domain_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _DOMAIN.match(name):
                raise ValueError(f"{name[:60]!r} is not a domain name like clinic.example")
        return sorted(set(value))


def provider_id(customer_id: str) -> str:
    """The practice's provider in Identity Platform: `oidc.` and a name of our own, so one
    practice's configuration can never name another's (infra/identity.tf makes the same)."""
    return f"oidc.upstream-{customer_id}"


@dataclass(frozen=True, slots=True)
class FederatedPerson:
    """An invited person as single sign-on needs them: who, whether active, and which of the
    provider's subjects (`sub`) is linked to them already, if any."""

    uid: str
    disabled: bool
    linked_subject: str | None


# --- the round trip's state --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Ticket:
    """What the callback must find again: the practice asked for, the state the IdP echoes,
    the nonce the ID token must carry, the PKCE verifier, and where to land."""

    customer_id: str
    state: str
    nonce: str
    verifier: str
    target: str
    expires: datetime

    @property
    def challenge(self) -> str:
        """RFC 7636 4.2, S256: BASE64URL(SHA256(verifier))."""
        return sealed.b64(hashlib.sha256(self.verifier.encode()).digest())


def new_ticket(customer_id: str, target: str, now: datetime) -> Ticket:
    return Ticket(customer_id, secrets.token_urlsafe(24), secrets.token_urlsafe(24),
                  sealed.b64(secrets.token_bytes(_VERIFIER_BYTES)), target,
                  now + timedelta(minutes=STATE_MINUTES))


def seal(secret: bytes, ticket: Ticket) -> str:
    return sealed.seal(secret, _PURPOSE, {
        "c": ticket.customer_id, "s": ticket.state, "n": ticket.nonce, "v": ticket.verifier,
        "t": ticket.target}, ticket.expires)


def unseal(secret: bytes, cookie: str | None, state: str | None, now: datetime) -> Ticket:
    """The ticket whose state the IdP sent back, or SsoError: forged, altered, expired, from
    another browser (no cookie), or the state of another round trip."""
    try:
        data, expires = sealed.unseal(secret, _PURPOSE, cookie, now)
        ticket = Ticket(str(data["c"]), str(data["s"]), str(data["n"]), str(data["v"]),
                        str(data["t"]), expires)
    except sealed.Unsealed as exc:
        raise SsoError(f"state cookie {exc}") from None
    except KeyError:
        raise SsoError("state cookie malformed") from None
    if not state or not hmac.compare_digest(ticket.state.encode(),
                                            state.encode("utf-8", "replace")):
        raise SsoError("state mismatch")
    return ticket


# --- the ID token's claims ---------------------------------------------------------------------

def vouched_email(claims: dict[str, Any], ticket: Ticket, settings: SsoSettings) -> str:
    """The address the provider vouches for, lower case, or SsoError. The signature, issuer,
    audience and expiry were checked by the adapter; these are the checks that are ours."""
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not hmac.compare_digest(nonce.encode(),
                                                             ticket.nonce.encode()):
        raise SsoError("nonce mismatch")
    # OIDC Core 2: with several audiences, azp names the client the token was issued to.
    audience = claims.get("aud")
    if isinstance(audience, list) and len(audience) > 1 \
            and claims.get("azp") != settings.client_id:
        raise SsoError("token issued to another client")
    email = claims.get("email")
    if not isinstance(email, str) or not email or len(email) > 254:
        raise SsoError("no e-mail claim")
    if claims.get("email_verified") is not True:
        raise SsoError("e-mail not verified by the provider")
    email = email.strip().lower()
    domain = email.rpartition("@")[2]
    if domain not in settings.domains:
        raise SsoError("e-mail outside the practice's domains")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise SsoError("no subject")
    return email


def settings_of(tenant: dict[str, Any]) -> SsoSettings | None:
    """The practice's stored provider, or None (none set, or a stored value no longer valid:
    a sign-in never runs on a configuration the model would refuse)."""
    raw = tenant.get("sso")
    if not isinstance(raw, dict):
        return None
    try:
        return SsoSettings.model_validate(raw)
    except ValueError:
        return None
