"""The second step of a sign-in, the use case: show a person their new authenticator (once),
check their code, and make the Identity Platform sign-in that carries our `upstream_2fa`
claim (a custom token minted by firebase-admin, exchanged with `signInWithCustomToken`).

The rules are in `domain/practice/second_factor.py`; this module reads and changes the
stored state through one transaction per attempt, so a code is good for one sign-in and the
fifth wrong code locks, however many instances answer at once.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from upstream.adapters.identity_toolkit import SignedIn, SignInRefused
from upstream.domain.practice import second_factor as factor
from upstream.domain.practice.second_factor import FactorState, Pending


class SecondFactorRefused(Exception):
    """`reason`: `wrong code`, `locked`, `step used` (that code's time step was used),
    `pending used` (this sign-in already made its session), `not enrolled`, `enrol by link`
    (no authenticator yet, and the password alone may not add one), `sign-in refused` (for
    the log, and which message the page shows)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FactorStore(Protocol):
    def state(self, customer_id: str, uid: str) -> FactorState: ...

    def change(self, customer_id: str, uid: str,
               step: Callable[[FactorState], FactorState | None]) -> FactorState | None: ...

    def reset(self, customer_id: str, uid: str) -> None: ...


class TokenMinter(Protocol):
    def custom_token(self, uid: str, claims: dict[str, Any] | None = None) -> str: ...


class CustomTokenSignIn(Protocol):
    def sign_in_with_custom_token(self, token: str) -> SignedIn: ...


@dataclass(frozen=True)
class SecondFactorDeps:
    factors: FactorStore
    seed_key: Callable[[], bytes]  # Secret Manager `totp-seed-key`
    minter: TokenMinter
    toolkit: CustomTokenSignIn
    first_use: Callable[[str, datetime], bool]  # an idempotency claim until the given time
    issuer: str = "Upstream"  # what the authenticator app shows beside the account


@dataclass(frozen=True, slots=True)
class Enrolment:
    secret_text: str  # base32, for typing in by hand
    uri: str  # otpauth://, for the QR code


def _secret(deps: SecondFactorDeps, pending: Pending, nonce: str) -> bytes:
    return factor.secret(deps.seed_key(), pending.customer_id, pending.uid, nonce)


def enrolment(deps: SecondFactorDeps, pending: Pending) -> Enrolment | None:
    """The authenticator to add, or None when the person already has one. The same one is
    shown again until a code confirms it (a reload does not invalidate a scanned QR). After
    the password alone, SecondFactorRefused("enrol by link")."""
    state = deps.factors.state(pending.customer_id, pending.uid)
    if state.enrolled:
        return None
    if not pending.mailbox:
        raise SecondFactorRefused("enrol by link")
    nonce = state.pending_nonce
    if nonce is None:
        fresh = secrets.token_urlsafe(18)
        changed = deps.factors.change(
            pending.customer_id, pending.uid,
            lambda s: None if s.enrolled or s.pending_nonce else FactorState(
                None, fresh, s.last_step, s.failures, s.locked_until))
        nonce = changed.pending_nonce if changed else \
            deps.factors.state(pending.customer_id, pending.uid).pending_nonce
    if nonce is None:  # enrolled meanwhile, from another tab
        return None
    person_secret = _secret(deps, pending, nonce)
    return Enrolment(factor.base32(person_secret),
                     factor.provisioning_uri(person_secret, pending.email, deps.issuer))


def verify(deps: SecondFactorDeps, pending: Pending, code: str, now: datetime) -> SignedIn:
    """The code → the Identity Platform sign-in with our claim, or SecondFactorRefused."""
    state = deps.factors.state(pending.customer_id, pending.uid)
    if state.locked(now):
        raise SecondFactorRefused("locked")
    nonce = state.active_nonce or (state.pending_nonce if pending.mailbox else None)
    if nonce is None:
        raise SecondFactorRefused("not enrolled")
    step = factor.matching_step(_secret(deps, pending, nonce), code, now, state.last_step)
    if step is None:
        after = deps.factors.change(pending.customer_id, pending.uid,
                                    lambda s: factor.after_failure(s, now))
        raise SecondFactorRefused("locked" if after and after.locked(now) else "wrong code")

    def use(current: FactorState) -> FactorState | None:
        same = (current.active_nonce or current.pending_nonce) == nonce
        fresh = current.last_step is None or step > current.last_step
        if not same or not fresh or current.locked(now):
            return None
        return factor.after_success(current, step)

    # This sign-in's pending step once (a session made, the step is spent), then the code's
    # time step once (two sign-ins racing with one code: one wins).
    if not deps.first_use(f"2fa-pending|{pending.ticket}",
                          now + timedelta(minutes=factor.PENDING_MINUTES)):
        raise SecondFactorRefused("pending used")
    if deps.factors.change(pending.customer_id, pending.uid, use) is None:
        raise SecondFactorRefused("step used")
    return mint(deps.minter, deps.toolkit, pending.uid, "totp")


def mint(minter: TokenMinter, toolkit: CustomTokenSignIn, uid: str, how: str) -> SignedIn:
    """Identity Platform's ID token for the person with our second-step claim (`totp`, or
    `sso` when the practice's own provider vouched for them)."""
    try:
        return toolkit.sign_in_with_custom_token(
            minter.custom_token(uid, {factor.CLAIM: how}))
    except SignInRefused as exc:  # disabled meanwhile
        raise SecondFactorRefused(f"sign-in refused: {exc.reason}") from None
