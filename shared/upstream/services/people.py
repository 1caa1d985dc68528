"""Adding, listing, disabling, enabling and re-roling a practice's people (Contract 6), for
the command line and the dashboard alike: the same checks, the same invitation, one audit
entry per change.

An invitation is an e-mail with a link to our own `/welcome` page holding Identity Platform's
one-time code: the person chooses a password there and is signed in. The code is good for
one use and an hour (Identity Platform's rule for its password action); an expired or used
link says so and the admin sends a new one. When no mail server is configured the link is
returned to the operator instead, who hands it over (it is a credential: it is never logged).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any, Protocol
from urllib.parse import quote

from upstream.domain import audit
from upstream.domain.practice import people
from upstream.domain.practice.people import PeopleError, Role
from upstream.logs import get_logger
from upstream.services.webhooks import INFRASTRUCTURE

log = get_logger(__name__)


class IdentityAdmin(Protocol):
    def people(self, customer_id: str) -> list[dict[str, Any]]: ...

    def add(self, customer_id: str, email: str, role: Role, password: str | None) -> str: ...

    def disable(self, customer_id: str, email: str) -> None: ...

    def enable(self, customer_id: str, email: str) -> None: ...

    def set_role(self, customer_id: str, email: str, role: Role) -> None: ...

    def invitation_code(self, customer_id: str, email: str) -> str: ...

    def sign_in_link_code(self, customer_id: str, email: str, continue_url: str) -> str: ...

    def practice_of(self, email: str) -> str | None: ...

    def revoke(self, customer_id: str, email: str) -> None: ...


class Authenticators(Protocol):
    def reset(self, customer_id: str, uid: str) -> None: ...


class Mailer(Protocol):
    @property
    def sender(self) -> str: ...

    def send(self, message: EmailMessage) -> None: ...


class TenantLookup(Protocol):
    def get(self, customer_id: str) -> dict[str, Any] | None: ...


class AuditLog(Protocol):
    def append(self, customer: str, entry: dict[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class PeopleDeps:
    identity: IdentityAdmin
    tenants: TenantLookup
    audit: AuditLog
    mailer: Callable[[], Mailer | None]
    dashboard_url: str
    authenticators: Authenticators | None = None  # second-factor state (reset when lost)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks for the change, as the audit records it."""

    name: str  # `cli:<login>` or `user:<e-mail>`
    role: str
    ip: str | None = None
    user_agent: str | None = None


def _practice(customer_id: str, deps: PeopleDeps) -> dict[str, Any]:
    tenant = deps.tenants.get(customer_id)
    if tenant is None:
        raise PeopleError(f"no practice {customer_id!r}")
    return tenant


def _record(customer_id: str, actor: Actor, action: str, email: str, now: datetime,
            deps: PeopleDeps, outcome: int = 200) -> None:
    deps.audit.append(customer_id, audit.entry(
        at=now, actor=actor.name, role=actor.role, action=action,
        resource_path=f"people/{email}", outcome=outcome, ip=actor.ip,
        user_agent=actor.user_agent))


def invitation_link(dashboard_url: str, code: str) -> str:
    return f"{dashboard_url.rstrip('/')}/welcome?code={quote(code, safe='')}"


def invitation_email(sender: str, to: str, practice: str, role: str, link: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"] = sender, to
    message["Subject"] = f"You are invited to Upstream for {practice}"
    message.set_content(
        f"You have been added to {practice} on Upstream as {role}.\n\n"
        f"Choose your password here (the link works once, within an hour):\n{link}\n\n"
        "If you did not expect this, ignore this e-mail; nothing happens until the link is "
        "used.\n")
    return message


def add_person(customer_id: str, email_text: str, role_text: str, password: str | None,
               actor: Actor, now: datetime, deps: PeopleDeps,
               exists_ok: bool = False) -> dict[str, Any]:
    """`exists_ok`: the same person with the same role already active is success (a re-run
    of the demo); nothing about them changes then, their password included."""
    tenant = _practice(customer_id, deps)
    email, role = people.normalise_email(email_text), people.check_role(role_text)
    _check_owner_grant(actor, None, role)
    try:
        deps.identity.add(customer_id, email, role, password)
    except PeopleError:
        same = [p for p in deps.identity.people(customer_id)
                if p["email"] == email and p["role"] == role and not p["disabled"]]
        if not (exists_ok and same):
            raise
        return {"customer_id": customer_id, "email": email, "role": role, "existed": True}
    _record(customer_id, actor, "user add", email, now, deps)
    result: dict[str, Any] = {"customer_id": customer_id, "email": email, "role": role}
    if password is not None:
        return {**result, "signs_in_with": "password"}
    return {**result, **invite(customer_id, email, actor, now, deps, tenant, role)}


def invite(customer_id: str, email: str, actor: Actor, now: datetime, deps: PeopleDeps,
           tenant: dict[str, Any] | None = None, role: str | None = None) -> dict[str, Any]:
    """Send (or hand back) a one-time link that sets the person's password."""
    tenant = tenant or _practice(customer_id, deps)
    link = invitation_link(deps.dashboard_url, deps.identity.invitation_code(customer_id, email))
    mailer = deps.mailer()
    sent = False
    if mailer is not None:
        try:
            mailer.send(invitation_email(mailer.sender, email,
                                         str(tenant.get("name") or customer_id),
                                         role or "a member", link))
            sent = True
        except Exception as exc:  # noqa: BLE001 - any mail failure: hand the link over instead
            log.warning("invitation e-mail not sent", extra={"customer_id": customer_id,
                                                             "reason": type(exc).__name__})
    _record(customer_id, actor, "user invite", email, now, deps)
    return {"invitation_sent": True} if sent else {"invitation_sent": False,
                                                   "invitation_link": link}


def list_people(customer_id: str, actor: Actor, now: datetime,
                deps: PeopleDeps) -> list[dict[str, Any]]:
    _practice(customer_id, deps)
    found = deps.identity.people(customer_id)
    deps.audit.append(customer_id, audit.entry(
        at=now, actor=actor.name, role=actor.role, action="user list", resource_path="people",
        outcome=200, ip=actor.ip, user_agent=actor.user_agent))
    return [{"email": p["email"], "role": p["role"], "disabled": p["disabled"]} for p in found]


def disable_person(customer_id: str, email_text: str, actor: Actor, now: datetime,
                   deps: PeopleDeps) -> dict[str, Any]:
    _practice(customer_id, deps)
    email = people.normalise_email(email_text)
    _check_owner_grant(actor, _target(customer_id, email, deps), "")
    deps.identity.disable(customer_id, email)
    _record(customer_id, actor, "user disable", email, now, deps)
    return {"customer_id": customer_id, "email": email, "disabled": True}


def _check_owner_grant(actor: Actor, target: dict[str, Any] | None, role: str) -> None:
    """Only an owner makes an owner or changes one: an admin cannot raise themselves or
    anyone else above admin, nor take a practice away from its owners. Machines (a write
    key, the command line) are trusted like an owner: they could already do this by hand."""
    touches_owner = role == "owner" or (target is not None and target.get("role") == "owner")
    if touches_owner and actor.role == "admin":
        raise PeopleError("only an owner can make an owner or change an owner's role")


def _target(customer_id: str, email: str, deps: PeopleDeps) -> dict[str, Any]:
    found = [p for p in deps.identity.people(customer_id) if p["email"] == email]
    if not found:
        raise PeopleError("no such person in this practice")
    return found[0]


def change_role(customer_id: str, email_text: str, role_text: str, actor: Actor,
                now: datetime, deps: PeopleDeps) -> dict[str, Any]:
    """The role in the person's claims; their sessions end so the next one carries it."""
    _practice(customer_id, deps)
    email, role = people.normalise_email(email_text), people.check_role(role_text)
    target = _target(customer_id, email, deps)
    _check_owner_grant(actor, target, role)
    if target.get("role") == role:
        return {"customer_id": customer_id, "email": email, "role": role, "changed": False}
    deps.identity.set_role(customer_id, email, role)
    _record(customer_id, actor, f"user role {role}", email, now, deps)
    return {"customer_id": customer_id, "email": email, "role": role, "changed": True}


def reset_authenticator(customer_id: str, email_text: str, actor: Actor, now: datetime,
                        deps: PeopleDeps) -> dict[str, Any]:
    """A lost or replaced phone: the person adds a new authenticator at their next sign-in
    (after their password), and every session they have ends now (the old phone's among
    them). Only an owner resets an owner's."""
    _practice(customer_id, deps)
    email = people.normalise_email(email_text)
    target = _target(customer_id, email, deps)
    _check_owner_grant(actor, target, "")
    if deps.authenticators is None:
        raise PeopleError("authenticators are not kept in this deployment")
    deps.authenticators.reset(customer_id, str(target.get("uid") or ""))
    deps.identity.revoke(customer_id, email)
    _record(customer_id, actor, "user reset-2fa", email, now, deps)
    return {"customer_id": customer_id, "email": email, "authenticator": "reset"}


def enable_person(customer_id: str, email_text: str, actor: Actor, now: datetime,
                  deps: PeopleDeps) -> dict[str, Any]:
    _practice(customer_id, deps)
    email = people.normalise_email(email_text)
    _check_owner_grant(actor, _target(customer_id, email, deps), "")
    deps.identity.enable(customer_id, email)
    _record(customer_id, actor, "user enable", email, now, deps)
    return {"customer_id": customer_id, "email": email, "disabled": False}


def sign_in_link(dashboard_url: str, code: str, email: str) -> str:
    return (f"{dashboard_url.rstrip('/')}/login/link/finish?code={quote(code, safe='')}"
            f"&email={quote(email, safe='')}")


def sign_in_email(sender: str, to: str, link: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"] = sender, to
    message["Subject"] = "Your Upstream sign-in link"
    message.set_content(
        f"Sign in to Upstream with this link (it works once, within an hour):\n{link}\n\n"
        "If you did not ask for it, ignore this e-mail: nothing happens until the link is "
        "used, and your password (if you have one) still works.\n")
    return message


def send_sign_in_link(email_text: str, actor: Actor, now: datetime, deps: PeopleDeps,
                      first_in_window: Callable[[str], bool]) -> None:
    """E-mail a one-time sign-in link to an active person, silently nothing otherwise: the
    caller answers the same either way (no oracle of who has an account). One link per
    address per window (`first_in_window`, keyed by the address), so the form cannot be
    used to flood someone's inbox. Without a mail server nothing is sent (a link is a
    credential; it is never shown to whoever typed the address). An outage of Identity
    Platform or Firestore part-way is logged and answered alike too: a 503 for a known
    address alone would tell who has an account."""
    try:
        email = people.normalise_email(email_text)
    except PeopleError:
        return
    try:
        _send_sign_in_link(email, actor, now, deps, first_in_window)
    except INFRASTRUCTURE as exc:
        log.warning("sign-in link not sent", extra={"reason": "outage",
                                                    "error": type(exc).__name__})


def _send_sign_in_link(email: str, actor: Actor, now: datetime, deps: PeopleDeps,
                       first_in_window: Callable[[str], bool]) -> None:
    customer = deps.identity.practice_of(email)
    mailer = deps.mailer()
    if customer is None or mailer is None or not first_in_window(email):
        log.info("sign-in link not sent", extra={"reason": "unknown, throttled or no mail"})
        return
    code = deps.identity.sign_in_link_code(customer, email,
                                           deps.dashboard_url.rstrip("/") + "/login/link/finish")
    try:
        mailer.send(sign_in_email(mailer.sender, email,
                                  sign_in_link(deps.dashboard_url, code, email)))
    except Exception as exc:  # noqa: BLE001 - any mail failure: logged, the page answers alike
        log.warning("sign-in link not sent", extra={"customer_id": customer,
                                                    "reason": type(exc).__name__})
        return
    deps.audit.append(customer, audit.entry(
        at=now, actor=f"user:{email}", role="", action="sign-in link sent",
        resource_path="session", outcome=202, ip=actor.ip, user_agent=actor.user_agent))
