"""`upstream dlq list|replay` and `upstream reconcile` (Contract 7): the way back.

Against the local stack by default; `--project P` talks to a real project with Application
Default Credentials instead (the same adapters the functions use).
"""

from __future__ import annotations

import json
import os
from typing import Any

import click

from upstream.stack.config import StackConfig
from upstream.topics import TOPICS

FORMATS = click.Choice(["json", "table"])
PROJECT = click.option("--project", default=None,
                       help="A Google Cloud project (ADC); default: the local stack.")


def _connect(project: str | None) -> None:
    """Point this process's clients at the stack, or at `project`."""
    if project:
        os.environ["UPSTREAM_PROJECT"] = project
        os.environ["UPSTREAM_SECRETS_BACKEND"] = "gcp"  # Secret Manager, not the stack's file
        for name in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST",
                     "STORAGE_EMULATOR_HOST", "FIREBASE_AUTH_EMULATOR_HOST"):
            os.environ.pop(name, None)
        return
    config = StackConfig()
    for key, value in config.emulator_env().items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("UPSTREAM_PROJECT", config.project)


def _show(data: Any, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, default=str))
        return
    rows = data if isinstance(data, list) else [data]
    for row in rows:
        for key, value in row.items():
            shown = json.dumps(value, default=str) if isinstance(value, dict | list) else value
            click.echo(f"{key:<14} {shown}")
        click.echo("")


@click.group()
def dlq() -> None:
    """What the dead-letter topics hold, and replaying it."""


@dlq.command("list")
@click.argument("topic", type=click.Choice(TOPICS))
@click.option("--customer", default=None, help="Only this tenant's messages.")
@PROJECT
@click.option("--format", "fmt", type=FORMATS, default="table")
def dlq_list(topic: str, customer: str | None, project: str | None, fmt: str) -> None:
    """Count, oldest and reasons of the messages held in TOPIC-dlq."""
    _connect(project)
    from upstream.adapters.wiring import dead_letter_hold
    from upstream.services.recovery import list_held

    _show(list_held(topic, dead_letter_hold(), customer), fmt)


@dlq.command("replay")
@click.argument("topic", type=click.Choice(TOPICS))
@click.option("--customer", default=None, help="Only this tenant's messages.")
@PROJECT
@click.option("--format", "fmt", type=FORMATS, default="table")
def dlq_replay(topic: str, customer: str | None, project: str | None, fmt: str) -> None:
    """Republish what TOPIC-dlq holds to TOPIC (the consumers are idempotent)."""
    _connect(project)
    from upstream.adapters.wiring import dead_letter_hold
    from upstream.services.recovery import replay_held

    _show(replay_held(topic, dead_letter_hold(), customer), fmt)


@click.command()
@click.option("--customer", default=None)
@click.option("--all", "every", is_flag=True, help="Every tenant.")
@click.option("--dry-run", is_flag=True, help="Report what differs; change nothing.")
@PROJECT
@click.option("--format", "fmt", type=FORMATS, default="table")
def reconcile(customer: str | None, every: bool, dry_run: bool, project: str | None,
              fmt: str) -> None:
    """Recompute aggregates from the stored claim lines and repair every cell that differs."""
    if bool(customer) == every:
        raise click.UsageError("give --customer C or --all")
    _connect(project)
    from upstream.adapters.clients import firestore_client
    from upstream.adapters.firestore_store import FirestoreTenants
    from upstream.adapters.wiring import reconcile_store
    from upstream.services.recovery import reconcile_all

    customers = [customer] if customer else FirestoreTenants(firestore_client()).list_ids()
    _show(reconcile_all(customers, reconcile_store(), apply=not dry_run), fmt)


@click.command("audit")
@click.option("--customer", required=True)
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--actor", default=None)
@click.option("--limit", type=click.IntRange(1, 10_000), default=200)
@PROJECT
@click.option("--format", "fmt", type=FORMATS, default="table")
def audit_command(customer: str, since: Any, actor: str | None, limit: int,
                  project: str | None, fmt: str) -> None:
    """The practice's access audit, newest first (Contract 6). Reading it is itself audited."""
    import getpass
    from datetime import UTC, datetime

    _connect(project)
    from upstream.adapters.clients import firestore_client
    from upstream.adapters.firestore_audit import FirestoreAudit
    from upstream.adapters.firestore_store import FirestoreTenants
    from upstream.domain import audit

    client = firestore_client()
    if FirestoreTenants(client).get(customer) is None:
        raise click.ClickException(f"no practice {customer!r} (upstream tenant add)")
    log = FirestoreAudit(client)
    log.append(customer, audit.entry(
        at=datetime.now(UTC), actor=f"cli:{getpass.getuser()}", role="operator",
        action="CLI audit", resource_path="audit", outcome=200, ip=None,
        user_agent="upstream"))
    entries, _ = log.page(customer, since.replace(tzinfo=UTC) if since else None, actor,
                          limit, None)
    _show([{k: v for k, v in e.items() if k != "expire_at"} for e in entries], fmt)


def register(main: click.Group) -> None:
    main.add_command(dlq)
    main.add_command(reconcile)
    main.add_command(audit_command)
