"""The people page for owners and admins (`/people`): who is in the practice, with what role,
and the changes an admin makes there — invite, change a role, disable, enable, send a new
invitation — through the same `services/people` use-cases as `upstream user`, so the rules
(the last owner stays, only an owner makes or changes an owner, one account per address)
hold in both places.

The access audit is the page's own entry (`dashboard.handle`): each change names the person
and, for a role, the new role, in the entry's resource. `services/people` is handed a log
that drops its own entries here, so one request stays one entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

from upstream.domain.practice.people import ROLES, PeopleError
from upstream.services import people as people_service
from upstream.services.dashboard_visit import Visit, common
from upstream.services.web_pages import Page, message, page, redirect

DONE = {"added": "Added; the invitation is on its way", "role": "Role changed: their next "
        "click asks them to sign in again", "disabled": "Disabled: they are signed out",
        "enabled": "Enabled: they can sign in again", "invited": "A new invitation is on its way",
        "reset-2fa": "Authenticator reset: they add a new one at their next sign-in"}


class PeopleSource(Protocol):
    people: Callable[[], people_service.PeopleDeps] | None


class _PageRecordsIt:
    """The dashboard's one entry per request records the change; see the module docstring."""

    def append(self, customer: str, entry: dict[str, Any]) -> None:
        return None


def _deps(deps: PeopleSource) -> people_service.PeopleDeps | None:
    made = deps.people() if deps.people is not None else None
    return replace(made, audit=_PageRecordsIt()) if made is not None else None


def _actor(visit: Visit) -> people_service.Actor:
    return people_service.Actor(visit.principal.actor, visit.principal.role,
                                visit.request.client_ip, visit.request.headers.get("User-Agent"))


def _when(millis: Any) -> str:
    if not isinstance(millis, int | float) or millis <= 0:
        return "never"
    return datetime.fromtimestamp(millis / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def people_page(visit: Visit, deps: PeopleSource, error: str | None = None,
                typed: dict[str, str] | None = None, status: int = 200,
                link: str | None = None) -> Page:
    made = _deps(deps)
    if made is None:
        return message(503, "Unavailable", "People are managed with `upstream user` here.")
    found = made.identity.people(visit.principal.customer_id)
    me = visit.principal.actor.partition(":")[2]
    rows = [{"email": p["email"], "role": p["role"], "disabled": p["disabled"],
             "last": _when(p.get("last_sign_in_ms")), "me": p["email"] == me} for p in found]
    return page(status, "people.html", **common(visit), rows=rows, roles=ROLES, error=error,
                typed=typed or {}, done=DONE.get(visit.request.query.get("done", "")),
                link=link, is_owner=visit.principal.role in ("owner", "write"))


def _change(visit: Visit, deps: PeopleSource, done: str,
            act: Callable[[people_service.PeopleDeps, people_service.Actor, str], Any],
            resource: Callable[[str], str]) -> Page:
    made = _deps(deps)
    if made is None:
        return message(503, "Unavailable", "People are managed with `upstream user` here.")
    email_text = visit.form.get("email", "")
    try:
        result = act(made, _actor(visit), email_text)
    except PeopleError as exc:
        return people_page(visit, deps, str(exc), dict(visit.form), 400)
    email = str(result.get("email") or "")
    if result.get("invitation_link"):  # no mail server: the admin hands the link over
        shown = people_page(visit, deps, None, None, 200, str(result["invitation_link"]))
        return replace(shown, audit_resource=resource(email))
    return replace(redirect(f"/people?done={done}"), audit_resource=resource(email))


def add(visit: Visit, deps: PeopleSource) -> Page:
    role = visit.form.get("role", "")
    return _change(visit, deps, "added", lambda made, actor, email: people_service.add_person(
        visit.principal.customer_id, email, role, None, actor, visit.now, made),
        lambda email: f"people/{email}/add/{role}")


def change_role(visit: Visit, deps: PeopleSource) -> Page:
    role = visit.form.get("role", "")
    if visit.form.get("email", "").strip().lower() == visit.principal.actor.partition(":")[2] \
            and role != visit.principal.role:
        return people_page(visit, deps, "ask another owner or admin to change your own role",
                           dict(visit.form), 400)
    return _change(visit, deps, "role", lambda made, actor, email: people_service.change_role(
        visit.principal.customer_id, email, role, actor, visit.now, made),
        lambda email: f"people/{email}/role/{role}")


def disable(visit: Visit, deps: PeopleSource) -> Page:
    if visit.form.get("email", "").strip().lower() == visit.principal.actor.partition(":")[2]:
        return people_page(visit, deps, "you cannot disable yourself", dict(visit.form), 400)
    return _change(visit, deps, "disabled", lambda made, actor, email:
                   people_service.disable_person(visit.principal.customer_id, email, actor,
                                                 visit.now, made),
                   lambda email: f"people/{email}/disable")


def enable(visit: Visit, deps: PeopleSource) -> Page:
    return _change(visit, deps, "enabled", lambda made, actor, email:
                   people_service.enable_person(visit.principal.customer_id, email, actor,
                                                visit.now, made),
                   lambda email: f"people/{email}/enable")


def reinvite(visit: Visit, deps: PeopleSource) -> Page:
    def act(made: people_service.PeopleDeps, actor: people_service.Actor,
            email: str) -> dict[str, Any]:
        from upstream.domain.practice.people import normalise_email

        address = normalise_email(email)
        target = [p for p in made.identity.people(visit.principal.customer_id)
                  if p["email"] == address]
        if not target or target[0]["disabled"]:
            raise PeopleError("no such active person in this practice")
        return {"email": address, **people_service.invite(
            visit.principal.customer_id, address, actor, visit.now, made,
            role=str(target[0]["role"]))}

    return _change(visit, deps, "invited", act, lambda email: f"people/{email}/invite")


def reset_authenticator(visit: Visit, deps: PeopleSource) -> Page:
    if visit.form.get("email", "").strip().lower() == visit.principal.actor.partition(":")[2]:
        return people_page(visit, deps, "ask another owner or admin to reset your own "
                                        "authenticator", dict(visit.form), 400)
    return _change(visit, deps, "reset-2fa", lambda made, actor, email:
                   people_service.reset_authenticator(visit.principal.customer_id, email,
                                                      actor, visit.now, made),
                   lambda email: f"people/{email}/reset-2fa")
