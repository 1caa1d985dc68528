"""People on Google Cloud Identity Platform through firebase-admin: users with the practice
and role as custom claims, ID tokens and session cookies verified with revocation checked.

The same code runs against the Firebase Auth emulator (firebase-admin switches itself when
`FIREBASE_AUTH_EMULATOR_HOST` is set and then accepts the emulator's unsigned tokens) and a
real project (Application Default Credentials). Every verification passes `check_revoked`,
which reads the user: a disabled person or one whose sessions were revoked is refused on the
next request, not when the token expires.

Listing a practice's people scans the project's users and keeps those with the practice's
claim: Identity Platform cannot query by claim. At a practice of 5–25 providers across a
few hundred practices that is a few pages of 1,000 users, read only by admin commands.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, ParamSpec, TypeVar
from urllib.parse import parse_qs, urlsplit

import firebase_admin
from firebase_admin import auth
from firebase_admin import exceptions as fb_exceptions

from upstream.domain.practice import people
from upstream.domain.practice.people import PeopleError, Principal, Role
from upstream.domain.practice.sso import FederatedPerson
from upstream.logs import get_logger
from upstream.ports import ServiceUnavailable

log = get_logger(__name__)
_P = ParamSpec("_P")
_R = TypeVar("_R")
# firebase-admin's errors for "no answer" (its requests transport's connection errors and
# timeouts become these) and for the service's own failures, as against a refusal of input.
_OUTAGES = (fb_exceptions.UnavailableError, fb_exceptions.DeadlineExceededError,
            fb_exceptions.InternalError, fb_exceptions.UnknownError)


def _outage_as_unavailable(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Identity Platform down is `ServiceUnavailable` (a 503 to retry), not the library's
    exception escaping as a 500 nor a refusal the person would read as "wrong address"."""
    @wraps(method)
    def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except _OUTAGES as exc:
            raise ServiceUnavailable(f"Identity Platform: {type(exc).__name__}") from exc
    return guarded

# firebase-admin refuses a session cookie shorter than 5 minutes or longer than 2 weeks.
SESSION_COOKIE_HOURS = 10


def _app(project: str) -> firebase_admin.App:
    name = f"upstream-{project}"
    try:
        return firebase_admin.get_app(name)
    except ValueError:
        return firebase_admin.initialize_app(options={"projectId": project}, name=name)


def _person(user: Any) -> dict[str, Any]:
    claims = user.custom_claims or {}
    return {"email": user.email, "role": claims.get(people.CLAIM_ROLE),
            "disabled": bool(user.disabled), "uid": user.uid,
            "created_ms": user.user_metadata.creation_timestamp,
            "last_sign_in_ms": user.user_metadata.last_sign_in_timestamp}


class FirebaseIdentity:
    def __init__(self, project: str) -> None:
        self._app = _app(project)

    # --- people ------------------------------------------------------------------------------

    @_outage_as_unavailable
    def people(self, customer_id: str) -> list[dict[str, Any]]:
        found = []
        for user in auth.list_users(app=self._app).iterate_all():
            if (user.custom_claims or {}).get(people.CLAIM_CUSTOMER) == customer_id:
                found.append(_person(user))
        return sorted(found, key=lambda p: str(p["email"]))

    def _member(self, customer_id: str, email: str) -> Any | None:
        try:
            user = auth.get_user_by_email(email, app=self._app)
        except auth.UserNotFoundError:
            return None
        if (user.custom_claims or {}).get(people.CLAIM_CUSTOMER) != customer_id:
            return None
        return user

    @_outage_as_unavailable
    def add(self, customer_id: str, email: str, role: Role, password: str | None) -> str:
        """Create the person with their claims; returns the uid. A password makes a user who
        signs in with it alone (the local stack and tests); without one the account has no
        way in until the invitation's link sets a password."""
        try:
            user = auth.create_user(email=email, password=password, email_verified=False,
                                    app=self._app)
        except auth.EmailAlreadyExistsError as exc:
            # The same answer whichever practice holds the address: no membership oracle.
            raise PeopleError("that e-mail address already has an Upstream account") from exc
        except ValueError as exc:  # a password firebase-admin refuses (under 6 characters)
            raise PeopleError(str(exc)) from exc
        auth.set_custom_user_claims(user.uid, people.claims(customer_id, role), app=self._app)
        return str(user.uid)

    @_outage_as_unavailable
    def disable(self, customer_id: str, email: str) -> None:
        user = self._member(customer_id, email)
        if user is None:
            raise PeopleError("no such person in this practice")
        people.check_not_last_owner(self.people(customer_id), email)
        auth.update_user(user.uid, disabled=True, app=self._app)
        auth.revoke_refresh_tokens(user.uid, app=self._app)

    @_outage_as_unavailable
    def set_role(self, customer_id: str, email: str, role: Role) -> None:
        """The new role in the claims, and every session revoked: the person's next click
        asks them to sign in again, and the new session carries the new role. Revocation is
        to the second (Identity Platform's `tokensValidAfterTime`): a session made within
        the same second as the change outlives it."""
        user = self._member(customer_id, email)
        if user is None:
            raise PeopleError("no such person in this practice")
        if role != "owner":
            people.check_not_last_owner(self.people(customer_id), email)
        auth.set_custom_user_claims(user.uid, people.claims(customer_id, role), app=self._app)
        auth.revoke_refresh_tokens(user.uid, app=self._app)

    @_outage_as_unavailable
    def revoke(self, customer_id: str, email: str) -> None:
        """End every session of the person (their next click asks them to sign in)."""
        user = self._member(customer_id, email)
        if user is None:
            raise PeopleError("no such person in this practice")
        auth.revoke_refresh_tokens(user.uid, app=self._app)

    @_outage_as_unavailable
    def enable(self, customer_id: str, email: str) -> None:
        user = self._member(customer_id, email)
        if user is None:
            raise PeopleError("no such person in this practice")
        auth.update_user(user.uid, disabled=False, app=self._app)

    @_outage_as_unavailable
    def invitation_code(self, customer_id: str, email: str) -> str:
        """A one-time code that sets the person's first password (Identity Platform's
        password-reset action: single use, one hour). Our own page takes it, so the link in
        the e-mail is ours whatever the project's action-URL template says."""
        if self._member(customer_id, email) is None:
            raise PeopleError("no such person in this practice")
        link = auth.generate_password_reset_link(email, app=self._app)
        codes = parse_qs(urlsplit(link).query).get("oobCode") or []
        if not codes:
            raise PeopleError("Identity Platform gave no invitation code")
        return str(codes[0])

    @_outage_as_unavailable
    def sign_in_link_code(self, customer_id: str, email: str, continue_url: str) -> str:
        """A one-time e-mail sign-in code for an active person of the practice (Identity
        Platform's EMAIL_SIGNIN action: single use, within its expiry). Our own page takes
        it, as with invitations."""
        user = self._member(customer_id, email)
        if user is None or user.disabled:
            raise PeopleError("no such active person in this practice")
        link = auth.generate_sign_in_with_email_link(
            email, auth.ActionCodeSettings(url=continue_url), app=self._app)
        codes = parse_qs(urlsplit(link).query).get("oobCode") or []
        if not codes:
            raise PeopleError("Identity Platform gave no sign-in code")
        return str(codes[0])

    @_outage_as_unavailable
    def practice_of(self, email: str) -> str | None:
        """The practice an active person belongs to, or None (no account, disabled, or an
        account without our claims)."""
        try:
            user = auth.get_user_by_email(email, app=self._app)
        except (auth.UserNotFoundError, ValueError):
            return None
        customer = (user.custom_claims or {}).get(people.CLAIM_CUSTOMER)
        return str(customer) if customer and not user.disabled else None

    @_outage_as_unavailable
    def federated_person(self, customer_id: str, email: str,
                         provider: str) -> FederatedPerson | None:
        """The practice's person with this address, with the provider subject linked to them
        (Identity Platform's provider data), or None when the address is not the practice's."""
        user = self._member(customer_id, email)
        if user is None:
            return None
        linked = next((str(p.uid) for p in user.provider_data if p.provider_id == provider),
                      None)
        return FederatedPerson(str(user.uid), bool(user.disabled), linked)

    @_outage_as_unavailable
    def custom_token(self, uid: str, claims: dict[str, Any] | None = None) -> str:
        """A one-hour custom token for the person: to link a provider identity to exactly
        them, or to sign them in with our second-step claim (`upstream_2fa`), which then
        rides in their ID token and session cookie. Signed in production through IAM
        signBlob as the api function itself (infra/iam.tf); only our server can make one."""
        token = auth.create_custom_token(uid, claims, app=self._app)
        return token.decode() if isinstance(token, bytes) else str(token)

    # --- sign-in -----------------------------------------------------------------------------

    def verify_id_token(self, token: str) -> Principal | None:
        try:
            decoded = auth.verify_id_token(token, app=self._app, check_revoked=True)
        except (ValueError, auth.InvalidIdTokenError, auth.UserDisabledError,
                auth.RevokedIdTokenError, auth.CertificateFetchError, auth.UserNotFoundError,
                fb_exceptions.FirebaseError):
            return None
        return people.from_claims(decoded)

    def session_cookie(self, id_token: str) -> str | None:
        """A session cookie minted from a fresh ID token; None if the token is refused."""
        if self.verify_id_token(id_token) is None:
            return None
        try:
            cookie = auth.create_session_cookie(
                id_token, expires_in=timedelta(hours=SESSION_COOKIE_HOURS), app=self._app)
        except (ValueError, fb_exceptions.FirebaseError):
            return None
        return cookie.decode() if isinstance(cookie, bytes) else str(cookie)

    def verify_session_cookie(self, cookie: str) -> Principal | None:
        try:
            decoded = auth.verify_session_cookie(cookie, check_revoked=True, app=self._app)
        except (ValueError, auth.InvalidSessionCookieError, auth.UserDisabledError,
                auth.RevokedSessionCookieError, auth.CertificateFetchError,
                auth.UserNotFoundError, fb_exceptions.FirebaseError):
            return None
        # The CSRF seed: the session's own issue time and subject, never sent in a form.
        return people.from_claims(decoded, f"{decoded.get('sub')}.{decoded.get('iat')}")


    def sign_out(self, principal: Principal) -> None:
        """Revoke every session of the person (Identity Platform has no per-cookie revoke)."""
        if principal.uid:
            try:
                auth.revoke_refresh_tokens(principal.uid, app=self._app)
            except (ValueError, auth.UserNotFoundError, fb_exceptions.FirebaseError):
                log.warning("sign-out could not revoke sessions")
