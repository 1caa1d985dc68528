"""The second factor (Contract 6): a six-digit code from an authenticator app (TOTP, RFC 6238)
after the password or the e-mailed link, for the roles a practice requires it of (owners and
admins by default in production).

Why Upstream checks the code itself rather than Identity Platform's own TOTP: the Firebase
Auth emulator cannot enrol a TOTP factor (measured: `mfaEnrollment:start` answers "Missing
phoneEnrollmentInfo"), so that path could never be proven here; this one runs the same on
the emulator and in production. It is enforced, not advisory: a session counts only when it
carries the claim `upstream_2fa`, which only our server can put there (a custom token it
signs after the code, `adapters/identity.py`). A password alone gets an Identity Platform
token without it, which neither the dashboard nor the API accepts for such a person.

The person's secret is never stored: it is HMAC-SHA256 of the platform's `totp-seed-key`
(Secret Manager) over the practice, the person and a random nonce that is stored. A copy of
Firestore alone yields no codes; a reset is a new nonce. Codes are checked a step either
side (RFC 6238 5.2: one step of clock drift or network delay), each time step once (5.2: no
replay), and five wrong codes lock the person out of this step for fifteen minutes
(NIST SP 800-63B 5.2.2 rate limiting, far under its 100-attempt ceiling).

A new authenticator is added only after a first factor that proved the person's mailbox (the
invitation's link, or an e-mailed sign-in link), never after the password alone: a stolen
password must not let its holder add their own authenticator before the person does (a new
owner, a practice that just turned codes on) or after an administrator's reset.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from upstream.domain import sealed
from upstream.domain.practice.people import CLAIM_SECOND_FACTOR, ROLES, Principal

CLAIM = CLAIM_SECOND_FACTOR  # "totp" after a code, "sso" after the practice's own provider
STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1
MAX_FAILURES = 5
LOCK_MINUTES = 15
# RFC 4226 4 (R6): a shared secret of at least 128 bits, 160 recommended.
SECRET_BYTES = 20
PENDING_COOKIE = "upstream_2fa"
PENDING_MINUTES = 5  # from the right password to the code: enough to open the app
_PURPOSE = "2fa-pending"


def required_roles(tenant: Mapping[str, Any], default: Iterable[str]) -> frozenset[str]:
    """The roles that need a second factor: the practice's own choice once it made one,
    else the deployment's default."""
    chosen = tenant.get("mfa_roles")
    roles = chosen if isinstance(chosen, list) else list(default)
    return frozenset(str(r) for r in roles if r in ROLES)


def satisfied(principal: Principal, tenant: Mapping[str, Any], default: Iterable[str]) -> bool:
    """Whether this person's session or token may be used: keys and people whose role needs
    no second factor always; otherwise only with the claim our server alone can add."""
    if not principal.is_person or principal.role not in required_roles(tenant, default):
        return True
    return principal.second_factor


def secret(key: bytes, customer_id: str, uid: str, nonce: str) -> bytes:
    return hmac.new(key, f"totp\x1f{customer_id}\x1f{uid}\x1f{nonce}".encode(),
                    hashlib.sha256).digest()[:SECRET_BYTES]


def _totp(person_secret: bytes) -> TOTP:
    return TOTP(person_secret, DIGITS, SHA1(), STEP_SECONDS)


def base32(person_secret: bytes) -> str:
    import base64

    return base64.b32encode(person_secret).decode().rstrip("=")


def provisioning_uri(person_secret: bytes, email: str, issuer: str) -> str:
    """The `otpauth://` URI authenticator apps read from the QR code (Google Authenticator's
    key URI format: SHA-1, six digits, 30 s, the defaults every app supports)."""
    return _totp(person_secret).get_provisioning_uri(email, issuer)


def code_at(person_secret: bytes, when: float) -> str:
    return _totp(person_secret).generate(when).decode()


def matching_step(person_secret: bytes, code: str, now: datetime,
                  last_step: int | None) -> int | None:
    """The time step the code belongs to, if it is right and newer than the last one used."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit() or not code.isascii():
        return None
    current = int(now.timestamp()) // STEP_SECONDS
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        expected = code_at(person_secret, step * STEP_SECONDS)
        if hmac.compare_digest(expected.encode(), code.encode()) \
                and (last_step is None or step > last_step):
            return step
    return None


# --- the stored state: a nonce, the last step used, failures --------------------------------

@dataclass(frozen=True, slots=True)
class FactorState:
    active_nonce: str | None = None  # the enrolled authenticator's
    pending_nonce: str | None = None  # shown at enrolment, active once a code matched it
    last_step: int | None = None
    failures: int = 0
    locked_until: datetime | None = None

    @classmethod
    def of(cls, stored: Mapping[str, Any] | None) -> FactorState:
        stored = stored or {}
        locked = stored.get("locked_until")
        return cls(stored.get("active_nonce"), stored.get("pending_nonce"),
                   stored.get("last_step"), int(stored.get("failures") or 0),
                   locked if isinstance(locked, datetime) else None)

    def to_doc(self) -> dict[str, Any]:
        return {"active_nonce": self.active_nonce, "pending_nonce": self.pending_nonce,
                "last_step": self.last_step, "failures": self.failures,
                "locked_until": self.locked_until}

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now

    @property
    def enrolled(self) -> bool:
        return self.active_nonce is not None


def after_failure(state: FactorState, now: datetime) -> FactorState:
    failures = state.failures + 1
    if failures >= MAX_FAILURES:
        return FactorState(state.active_nonce, state.pending_nonce, state.last_step, 0,
                           now + timedelta(minutes=LOCK_MINUTES))
    return FactorState(state.active_nonce, state.pending_nonce, state.last_step, failures,
                       state.locked_until)


def after_success(state: FactorState, step: int) -> FactorState:
    """The step used up, failures forgotten; a pending enrolment becomes the authenticator."""
    nonce = state.active_nonce or state.pending_nonce
    return FactorState(nonce, None, step, 0, None)


# --- the step between the first factor and the code ------------------------------------------

@dataclass(frozen=True, slots=True)
class Pending:
    """The first factor is done: who, where to land, until when (sealed in a cookie)."""

    customer_id: str
    uid: str
    email: str
    target: str
    ticket: str  # used once: a second code cannot reuse this step after a session was made
    role: str = ""  # for the audit of each code tried
    # The first factor proved the mailbox (an invitation or an e-mailed link), not only the
    # password: only then may a new authenticator be added.
    mailbox: bool = False


def seal_pending(secret_key: bytes, pending: Pending, now: datetime) -> str:
    return sealed.seal(secret_key, _PURPOSE, {"c": pending.customer_id, "u": pending.uid,
                                              "m": pending.email, "t": pending.target,
                                              "k": pending.ticket, "r": pending.role,
                                              "b": pending.mailbox},
                       now + timedelta(minutes=PENDING_MINUTES))


def open_pending(secret_key: bytes, cookie: str | None, now: datetime) -> Pending | None:
    try:
        data, _ = sealed.unseal(secret_key, _PURPOSE, cookie, now)
        return Pending(str(data["c"]), str(data["u"]), str(data["m"]), str(data["t"]),
                       str(data["k"]), str(data.get("r") or ""), data.get("b") is True)
    except (sealed.Unsealed, KeyError):
        return None
