"""`upstream user add|list|disable|enable|role|reset-2fa` (Contract 5 and 6): a practice's
people.

Against the local stack (its Auth emulator) by default; `--project P` talks to a real
Identity Platform project with Application Default Credentials. Each command is audited
under the practice as `cli:<login>`.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click

from upstream.cli_recovery import FORMATS, PROJECT, _connect, _show
from upstream.domain.practice.people import ROLES, PeopleError


def _deps_and_actor() -> tuple[Any, Any]:
    from upstream.adapters.wiring import people_deps
    from upstream.services.people import Actor

    return people_deps(), Actor(f"cli:{getpass.getuser()}", "operator", None, "upstream")


def _run(project: str | None, fmt: str, call: Callable[[Any, Any, datetime], Any]) -> None:
    """Connect, call the use-case as the operator, show its answer; a refusal is one line."""
    _connect(project)
    deps, actor = _deps_and_actor()
    try:
        _show(call(deps, actor, datetime.now(UTC)), fmt)
    except PeopleError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def user() -> None:
    """A practice's people: owner, admin, biller, viewer."""


@user.command("add")
@click.argument("customer_id")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--password", default=None,
              help="Local stack and tests: the person signs in with this password alone. "
                   "Without it an invitation e-mail carries a one-time link.")
@click.option("--exists-ok", is_flag=True,
              help="The same person with the same role already there is success.")
@PROJECT
@click.option("--format", "fmt", type=FORMATS, default="json")
def user_add(customer_id: str, email: str, role: str, password: str | None, exists_ok: bool,
             project: str | None, fmt: str) -> None:
    """Add EMAIL to CUSTOMER_ID with a role, and invite them."""
    import os

    from upstream.services.people import add_person

    if project and password is None and not os.environ.get("UPSTREAM_DASHBOARD_URL"):
        raise click.ClickException("set UPSTREAM_DASHBOARD_URL to the dashboard's public URL: "
                                   "the invitation links there")
    _run(project, fmt, lambda deps, actor, now: add_person(
        customer_id, email, role, password, actor, now, deps, exists_ok))


@user.command("list")
@click.argument("customer_id")
@PROJECT
@click.option("--format", "fmt", type=FORMATS, default="table")
def user_list(customer_id: str, project: str | None, fmt: str) -> None:
    """The practice's people and their roles."""
    from upstream.services.people import list_people

    _run(project, fmt, lambda deps, actor, now: list_people(customer_id, actor, now, deps))


@user.command("disable")
@click.argument("customer_id")
@click.argument("email")
@PROJECT
@click.option("--format", "fmt", type=FORMATS, default="json")
def user_disable(customer_id: str, email: str, project: str | None, fmt: str) -> None:
    """Disable EMAIL: refused on their next request, sessions revoked (the last owner stays)."""
    from upstream.services.people import disable_person

    _run(project, fmt, lambda deps, actor, now: disable_person(customer_id, email, actor, now,
                                                                deps))


@user.command("enable")
@click.argument("customer_id")
@click.argument("email")
@PROJECT
@click.option("--format", "fmt", type=FORMATS, default="json")
def user_enable(customer_id: str, email: str, project: str | None, fmt: str) -> None:
    """Let a disabled EMAIL sign in again (with the role they had)."""
    from upstream.services.people import enable_person

    _run(project, fmt, lambda deps, actor, now: enable_person(customer_id, email, actor, now,
                                                               deps))


@user.command("role")
@click.argument("customer_id")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True)
@PROJECT
@click.option("--format", "fmt", type=FORMATS, default="json")
def user_role(customer_id: str, email: str, role: str, project: str | None, fmt: str) -> None:
    """Give EMAIL another role; their sessions end so the next sign-in carries it (the last
    owner stays an owner)."""
    from upstream.services.people import change_role

    _run(project, fmt, lambda deps, actor, now: change_role(customer_id, email, role, actor,
                                                             now, deps))


@user.command("reset-2fa")
@click.argument("customer_id")
@click.argument("email")
@PROJECT
@click.option("--format", "fmt", type=FORMATS, default="json")
def user_reset_2fa(customer_id: str, email: str, project: str | None, fmt: str) -> None:
    """EMAIL lost their authenticator: they add a new one at their next sign-in, and their
    sessions end now."""
    from upstream.services.people import reset_authenticator

    _run(project, fmt, lambda deps, actor, now: reset_authenticator(customer_id, email, actor,
                                                                     now, deps))


def register(main: click.Group) -> None:
    main.add_command(user)
