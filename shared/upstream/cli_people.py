"""`upstream user add|list|disable|enable|role` (Contract 5 and 6): a practice's people.

Against the local stack (its Auth emulator) by default; `--project P` talks to a real
Identity Platform project with Application Default Credentials. Each command is audited
under the practice as `cli:<login>`.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import Any

import click

from upstream.cli_recovery import FORMATS, PROJECT, _connect, _show
from upstream.domain.practice.people import ROLES, PeopleError


def _deps_and_actor() -> tuple[Any, Any]:
    from upstream.adapters.wiring import people_deps
    from upstream.services.people import Actor

    return people_deps(), Actor(f"cli:{getpass.getuser()}", "operator", None, "upstream")


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
    _connect(project)
    deps, actor = _deps_and_actor()
    try:
        _show(add_person(customer_id, email, role, password, actor, datetime.now(UTC), deps,
                         exists_ok), fmt)
    except PeopleError as exc:
        raise click.ClickException(str(exc)) from None


@user.command("list")
@click.argument("customer_id")
@PROJECT
@click.option("--format", "fmt", type=FORMATS, default="table")
def user_list(customer_id: str, project: str | None, fmt: str) -> None:
    """The practice's people and their roles."""
    from upstream.services.people import list_people

    _connect(project)
    deps, actor = _deps_and_actor()
    try:
        _show(list_people(customer_id, actor, datetime.now(UTC), deps), fmt)
    except PeopleError as exc:
        raise click.ClickException(str(exc)) from None


@user.command("disable")
@click.argument("customer_id")
@click.argument("email")
@PROJECT
@click.option("--format", "fmt", type=FORMATS, default="json")
def user_disable(customer_id: str, email: str, project: str | None, fmt: str) -> None:
    """Disable EMAIL: refused on their next request, sessions revoked (the last owner stays)."""
    from upstream.services.people import disable_person

    _connect(project)
    deps, actor = _deps_and_actor()
    try:
        _show(disable_person(customer_id, email, actor, datetime.now(UTC), deps), fmt)
    except PeopleError as exc:
        raise click.ClickException(str(exc)) from None


@user.command("enable")
@click.argument("customer_id")
@click.argument("email")
@PROJECT
@click.option("--format", "fmt", type=FORMATS, default="json")
def user_enable(customer_id: str, email: str, project: str | None, fmt: str) -> None:
    """Let a disabled EMAIL sign in again (with the role they had)."""
    from upstream.services.people import enable_person

    _connect(project)
    deps, actor = _deps_and_actor()
    try:
        _show(enable_person(customer_id, email, actor, datetime.now(UTC), deps), fmt)
    except PeopleError as exc:
        raise click.ClickException(str(exc)) from None


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

    _connect(project)
    deps, actor = _deps_and_actor()
    try:
        _show(change_role(customer_id, email, role, actor, datetime.now(UTC), deps), fmt)
    except PeopleError as exc:
        raise click.ClickException(str(exc)) from None


def register(main: click.Group) -> None:
    main.add_command(user)
