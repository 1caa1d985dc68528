"""A practice's people (Contract 6): one role each in one practice, and what each role may do.

Roles are ordered by what they may change, not by seniority: a `viewer` reads, a `biller`
works alerts, uploads and automation decisions, an `admin` also changes people, settings and
reads the access audit, an `owner` is an admin who cannot be removed while the only one (a
practice must never be left with nobody who can add people back).

API keys keep their scopes (`read`, `write`) for machines; a write key is trusted like an
admin because that is what it could already do before people existed (settings, the audit,
dead-letter replay). Routes name the level they need, and `may` answers for people and keys
alike, so no handler checks a role itself.

The role and practice travel as custom claims on the Identity Platform user, under names
prefixed `upstream_` so they cannot collide with claims another product sets on the account.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

Role = Literal["owner", "admin", "biller", "viewer"]
Level = Literal["read", "write", "admin"]
ROLES: tuple[Role, ...] = ("owner", "admin", "biller", "viewer")
_LEVELS_OF_ROLE: dict[str, frozenset[str]] = {
    "owner": frozenset({"read", "write", "admin"}),
    "admin": frozenset({"read", "write", "admin"}),
    "biller": frozenset({"read", "write"}),
    "viewer": frozenset({"read"}),
}
# Machines: a write key did everything a write key does today; a read key only reads.
_LEVELS_OF_SCOPES: dict[str, frozenset[str]] = {
    "write": frozenset({"read", "write", "admin"}),
    "read": frozenset({"read"}),
}
CLAIM_CUSTOMER = "upstream_customer"
CLAIM_ROLE = "upstream_role"
CLAIM_SECOND_FACTOR = "upstream_2fa"  # set only through our custom tokens (second_factor.py)
# RFC 5321 caps a path at 256 octets; anything longer is not an address a practice uses.
MAX_EMAIL = 254
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


class PeopleError(ValueError):
    """A request about people that cannot be done as asked (the message says why)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a signed-in person or an API key, under exactly one practice."""

    customer_id: str
    actor: str  # `user:<e-mail>` or `key:<key id>`: what the audit records
    role: str  # a Role for people, the top scope (`read`, `write`) for keys
    levels: frozenset[str]
    session_seed: str = ""  # what a dashboard CSRF token is bound to
    uid: str = ""  # the Identity Platform user (people only): what a sign-out revokes
    # The session passed our second step (a code, or the practice's own single sign-on):
    # the `upstream_2fa` claim only our server's custom tokens carry (second_factor.py).
    second_factor: bool = False

    def may(self, level: str) -> bool:
        return level in self.levels

    @property
    def is_person(self) -> bool:
        return self.actor.startswith("user:")


def for_user(customer_id: str, email: str, role: str, session_seed: str = "",
             uid: str = "", second_factor: bool = False) -> Principal:
    return Principal(customer_id, f"user:{email}", role,
                     _LEVELS_OF_ROLE.get(role, frozenset()), session_seed, uid, second_factor)


def for_key(customer_id: str, key_id: str, scopes: list[str] | tuple[str, ...],
            session_seed: str = "") -> Principal:
    levels: frozenset[str] = frozenset().union(*(_LEVELS_OF_SCOPES.get(s, frozenset())
                                                 for s in scopes))
    top = "write" if "write" in scopes else "read"
    return Principal(customer_id, f"key:{key_id}", top, levels, session_seed)


def normalise_email(text: str) -> str:
    """The address as Identity Platform keys it (lower case, trimmed), or PeopleError."""
    email = (text or "").strip().lower()
    if len(email) > MAX_EMAIL or not _EMAIL.match(email):
        raise PeopleError("that is not an e-mail address")
    return email


def check_role(text: str) -> Role:
    if text not in ROLES:
        raise PeopleError(f"role must be one of {', '.join(ROLES)}")
    return text


def claims(customer_id: str, role: Role) -> dict[str, str]:
    return {CLAIM_CUSTOMER: customer_id, CLAIM_ROLE: role}


def from_claims(decoded: dict[str, Any], session_seed: str = "") -> Principal | None:
    """The principal a verified token stands for, or None when it carries no practice or no
    role we know (a Firebase user made by something else must not get in)."""
    customer = decoded.get(CLAIM_CUSTOMER)
    role = decoded.get(CLAIM_ROLE)
    email = decoded.get("email")
    if not isinstance(customer, str) or not customer or role not in ROLES \
            or not isinstance(email, str) or not email:
        return None
    return for_user(customer, email.lower(), str(role), session_seed,
                    str(decoded.get("uid") or decoded.get("sub") or ""),
                    decoded.get(CLAIM_SECOND_FACTOR) in ("totp", "sso"))


def check_not_last_owner(people: list[dict[str, Any]], email: str) -> None:
    """Refuse disabling (or demoting) the only active owner of a practice."""
    owners = [p for p in people if p.get("role") == "owner" and not p.get("disabled")]
    if [p.get("email") for p in owners] == [email]:
        raise PeopleError("that is the practice's only owner; add another owner first")
