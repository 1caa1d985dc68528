"""The `upstream` command (DESIGN Contract 5)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import click

from upstream.cli_detect import register as register_detection
from upstream.cli_mcp import register as register_mcp
from upstream.cli_payers import register as register_payers
from upstream.cli_people import register as register_people
from upstream.cli_recovery import register as register_recovery
from upstream.domain.records import RecordKind
from upstream.domain.table import UnreadableFile
from upstream.events import content_id
from upstream.stack.config import StackConfig

KINDS = click.Choice([k.value for k in RecordKind])
FORMATS = click.Choice(["json", "table"])


def _print(data: Any, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, default=str))
        return
    if isinstance(data, list):
        for item in data:
            _print(item, "table")
            click.echo("")
        return
    width = max((len(str(k)) for k in data), default=0)
    for key, value in data.items():
        shown = json.dumps(value, default=str) if isinstance(value, (dict, list)) else value
        click.echo(f"{str(key).ljust(width)}  {shown}")


@click.group()
def main() -> None:
    """Upstream: early warning for healthcare revenue operations."""


# --- offline -------------------------------------------------------------------------------

@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--kind", type=KINDS, default=None, help="Default: detected from the header.")
@click.option("--records", "records_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write normalized records here (JSON lines).")
@click.option("--rejects", "rejects_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write rejected rows here (CSV).")
@click.option("--format", "fmt", type=FORMATS, default="json")
def validate(file: Path, kind: str | None, records_out: Path | None, rejects_out: Path | None,
             fmt: str) -> None:
    """Dry-run ingestion of FILE: summary, normalized records and rejects. No cloud."""
    from upstream.offline import offline_context, read_file

    try:
        stream = open(file, "rb")
    except OSError as exc:
        _fail(f"cannot open {file}: {exc.strerror}")
    if kind == RecordKind.REMITTANCE.value or (kind is None and _is_x12(file)):
        with stream:
            _validate_remittance(file, stream.read(), records_out, rejects_out, fmt)
        return
    with stream, _open_text(rejects_out) as rejects, _open_text(records_out) as out:
        try:
            report, records = read_file(stream, RecordKind(kind) if kind else None,
                                        offline_context(), rejects)
            for record in records:
                if out:
                    out.write(record.model_dump_json() + "\n")
        except UnreadableFile as exc:
            _fail(f"{file}: {exc}")
    _print({**report.summary(), "kind": report.kind.value, "encoding": report.encoding,
            "delimiter": report.delimiter, "unknown_columns": report.unknown_columns}, fmt)


def _is_x12(file: Path) -> bool:
    from upstream.domain.remittance import looks_like_x12

    with open(file, "rb") as head:
        return looks_like_x12(head.read(512))


def _validate_remittance(file: Path, data: bytes, records_out: Path | None,
                         rejects_out: Path | None, fmt: str) -> None:
    from upstream.domain.ingest import Rejected
    from upstream.domain.rejects import RejectsWriter
    from upstream.domain.remittance import RemittanceUnreadable, outcome_records, read_835

    try:
        remittance = read_835(data)
    except RemittanceUnreadable as exc:
        _fail(f"{file}: {exc.reason}: {exc}")
    unusable = [p for p in remittance.problems if p.level == "claim"]
    with _open_text(rejects_out) as rejects, _open_text(records_out) as out:
        if rejects:
            writer = RejectsWriter(rejects, ["segment_id"])
            for problem in unusable:
                writer.write(Rejected(problem.segment, "unusable_claim", problem.reason,
                                      [problem.segment_id]))
        if out:
            for record in outcome_records(remittance):
                out.write(json.dumps(record) + "\n")
    _print({"rows": len(remittance.claims) + len(unusable), "accepted": len(remittance.claims),
            "rejected": len(unusable),
            "reasons": {"unusable_claim": len(unusable)} if unusable else {},
            "kind": RecordKind.REMITTANCE.value, "version": remittance.version,
            "transactions": remittance.transactions,
            "services": sum(len(c.services) for c in remittance.claims),
            "warnings": len(remittance.warnings),
            "warning_sample": [p.describe() for p in remittance.warnings[:10]]}, fmt)


class _NullContext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


def _open_text(path: Path | None) -> Any:
    return open(path, "w", encoding="utf-8", newline="") if path else _NullContext()


def _fail(message: str) -> None:
    click.echo(f"upstream: {message}", err=True)
    sys.exit(2)


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              required=True)
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), default="2025-01-01")
@click.option("--end", type=click.DateTime(["%Y-%m-%d"]), default="2025-12-31")
@click.option("--lines-per-day", type=float, default=60.0)
@click.option("--seed", type=int, default=7)
def sample(out_dir: Path, start: Any, end: Any, lines_per_day: float, seed: int) -> None:
    """Write a year of realistic, messy claim exports and authorizations to OUT."""
    from upstream.domain.sample import Shift, generate, monthly_files

    first, last = start.date(), end.date()
    # Two changes to find: a payer that starts denying more, one that starts paying later.
    shifts = [Shift("UnitedHealthcare", date.fromordinal(last.toordinal() - 90),
                    denial_factor=2.5),
              Shift("Cigna", date.fromordinal(last.toordinal() - 60), extra_lag_days=9)]
    data = generate(first, last, lines_per_day=lines_per_day, seed=seed, shifts=shifts)
    files = monthly_files(data, seed)
    for name, content in files.items():
        path = out_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    (out_dir / "truth.json").write_text(json.dumps(
        {"claim_lines": len(data.claims), "authorizations": len(data.authorizations),
         "shifts": [{"payer": s.payer, "start": s.start.isoformat(),
                     "denial_factor": s.denial_factor, "extra_lag_days": s.extra_lag_days}
                    for s in shifts]}, indent=2))
    click.echo(json.dumps({"out": str(out_dir), "files": len(files),
                           "claim_lines": len(data.claims)}))


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("build/functions"), show_default=True)
def package(out_dir: Path) -> None:
    """Build each function's reproducible source archive (what Terraform deploys)."""
    from upstream.deploy.package import package_all

    root = StackConfig().functions_dir.parent
    _print(package_all(root, out_dir), "json")


# --- the local stack -----------------------------------------------------------------------


@main.command()
@click.option("--wait", "wait_seconds", type=float, default=0.0,
              help="Wait up to this long for the first message.")
@click.option("--format", "fmt", type=FORMATS, default="table")
def mail(wait_seconds: float, fmt: str) -> None:
    """Messages the local SMTP server received (the alert e-mails), newest last."""
    import email
    import email.policy

    directory = StackConfig().mail_dir
    deadline = time.monotonic() + wait_seconds
    while not list(directory.glob("*.eml")) and time.monotonic() < deadline:
        time.sleep(0.5)
    rows = []
    for path in sorted(directory.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        rows.append({"file": str(path.resolve()), "to": message["To"],
                     "subject": message["Subject"]})
    _print(rows, fmt)

def _stack_env(config: StackConfig) -> None:
    """Point this process's clients at the local stack."""
    for key, value in config.emulator_env().items():
        os.environ.setdefault(key, value)


@main.group()
def stack() -> None:
    """Run Upstream locally: emulators, functions, the storage bridge."""


@stack.command("up")
@click.option("--format", "fmt", type=FORMATS, default="table")
def stack_up(fmt: str) -> None:
    from upstream.stack.manager import StackError, up

    try:
        _print(up(StackConfig()), fmt)
    except StackError as exc:
        _fail(str(exc))


@stack.command("down")
@click.option("--format", "fmt", type=FORMATS, default="table")
def stack_down(fmt: str) -> None:
    from upstream.stack.manager import down

    _print(down(StackConfig()), fmt)


@stack.command("status")
@click.option("--format", "fmt", type=FORMATS, default="table")
def stack_status(fmt: str) -> None:
    from upstream.stack.manager import status

    _print(status(StackConfig()), fmt)


@main.group()
def tenant() -> None:
    """Tenants (customers) of the local stack."""


@tenant.command("add")
@click.argument("customer_id")
@click.option("--name", default=None)
@click.option("--webhook-secret", default=None, help="Default: a new random secret.")
@click.option("--athena-hub-secret", default=None)
@click.option("--athena-practice-id", default=None,
              help="The athenaOne practice; also provisions API credentials for the fetcher.")
@click.option("--notify-email", "notify_emails", multiple=True,
              help="E-mail HIGH and CRITICAL alerts here as they happen (repeatable).")
@click.option("--owner", "owner_email", default=None,
              help="Invite this person as the practice's owner (an e-mail with a one-time link).")
@click.option("--project", default=None,
              help="A Google Cloud project (Application Default Credentials, Secret Manager); "
                   "default: the local stack.")
def tenant_add(customer_id: str, name: str | None, webhook_secret: str | None,
               athena_hub_secret: str | None, athena_practice_id: str | None,
               notify_emails: tuple[str, ...], owner_email: str | None,
               project: str | None) -> None:
    """Create CUSTOMER_ID with its secrets (the patient-hash key is made once, never replaced),
    and invite its owner.

    Locally the athenaOne API credentials are made up here, and the stack's fake athenaOne
    accepts exactly those; in production they are the practice's, put in Secret Manager."""
    from datetime import UTC, datetime

    from upstream.cli_recovery import _connect
    from upstream.services.onboarding import OnboardingError, add_tenant

    if project and owner_email and not os.environ.get("UPSTREAM_DASHBOARD_URL"):
        _fail("set UPSTREAM_DASHBOARD_URL to the dashboard's public URL: the invitation "
              "links there")
    _connect(project)
    from upstream.adapters.clients import firestore_client
    from upstream.adapters.firestore_store import FirestoreTenants
    from upstream.adapters.wiring import secret_store

    try:
        created = add_tenant(customer_id, name=name, webhook_secret=webhook_secret,
                             athena_hub_secret=athena_hub_secret,
                             athena_practice_id=athena_practice_id,
                             notify_emails=list(notify_emails), secrets=secret_store(),
                             tenants=FirestoreTenants(firestore_client()),
                             local=project is None)
    except OnboardingError as exc:
        _fail(str(exc))
    if owner_email:
        import getpass

        from upstream.adapters.wiring import people_deps
        from upstream.domain.practice.people import PeopleError
        from upstream.services.people import Actor, add_person

        try:
            created["owner"] = add_person(
                customer_id, owner_email, "owner", None,
                Actor(f"cli:{getpass.getuser()}", "operator", None, "upstream"),
                datetime.now(UTC), people_deps(), exists_ok=True)
        except PeopleError as exc:
            _fail(f"--owner: {exc}")
    click.echo(json.dumps(created))


@tenant.command("key")
@click.argument("customer_id", required=False)
@click.option("--scope", type=click.Choice(["read", "write"]), default="read",
              show_default=True, help="write can also change alerts, authorizations, settings")
@click.option("--name", default="", help="Who or what uses the key.")
@click.option("--expires-days", type=int, default=None)
@click.option("--revoke", "revoke_id", default=None, help="Revoke this key id instead.")
def tenant_key(customer_id: str | None, scope: str, name: str, expires_days: int | None,
               revoke_id: str | None) -> None:
    """Create an API key for CUSTOMER_ID (printed once; only its hash is kept), or revoke one."""
    from datetime import UTC, datetime, timedelta

    config = StackConfig()
    _stack_env(config)
    from upstream.adapters.clients import firestore_client
    from upstream.adapters.firestore_api_keys import FirestoreApiKeys
    from upstream.adapters.firestore_store import FirestoreTenants
    from upstream.domain.api_keys import new_key

    keys = FirestoreApiKeys(firestore_client())
    now = datetime.now(UTC)
    if revoke_id:
        if not keys.revoke(revoke_id, now):
            _fail(f"no key {revoke_id}")
        click.echo(json.dumps({"key_id": revoke_id, "revoked": True}))
        return
    if not customer_id or FirestoreTenants(firestore_client()).get(customer_id) is None:
        _fail("give the id of an existing tenant (upstream tenant add)")
    key = new_key()
    expires = now + timedelta(days=expires_days) if expires_days else None
    keys.create(key.key_id, str(customer_id), key.secret_hash,
                ["read", "write"] if scope == "write" else ["read"], name, now, expires)
    click.echo(json.dumps({"customer_id": customer_id, "key_id": key.key_id, "scope": scope,
                           "token": key.token,
                           "expires_at": expires.isoformat() if expires else None}))


def _content_id(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return content_id(digest.hexdigest(), path.stat().st_size)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--customer", required=True)
@click.option("--kind", type=KINDS, default=None)
@click.option("--wait/--no-wait", default=True, help="Wait for the ingestion summary.")
@click.option("--timeout", type=float, default=300.0)
@click.option("--format", "fmt", type=click.Choice(["json", "table", "line"]), default="json")
def upload(file: Path, customer: str, kind: str | None, wait: bool, timeout: float,
           fmt: str) -> None:
    """Drop FILE into the uploads bucket as staff would, and show what ingestion made of it."""
    config = StackConfig()
    _stack_env(config)
    from upstream.adapters.clients import firestore_client, storage_client
    from upstream.adapters.firestore_store import FirestoreTenants, FirestoreUploads
    from upstream.adapters.gcs import GcsObjectStore

    tenant = FirestoreTenants(firestore_client()).get(customer)
    if tenant is None or tenant.get("status", "active") != "active":
        _fail(f"no active practice {customer!r} on this stack: add it with "
              f"`upstream tenant add {customer}`")
    name = f"uploads/{customer}/{kind + '/' if kind else ''}{file.name}"
    content_type = "text/tab-separated-values" if file.suffix == ".tsv" else "text/csv"
    GcsObjectStore(storage_client()).upload_file(config.bucket, name, str(file), content_type)
    if not wait:
        click.echo(json.dumps({"object": name, "status": "uploaded"}))
        return
    uploads, upload_id = FirestoreUploads(firestore_client()), _content_id(file)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        summary = uploads.get_upload(customer, upload_id)
        if summary and summary.get("status") != "processing":
            if fmt == "line":
                click.echo(f"{name:52} {summary['status']:9} rows={summary.get('rows')} "
                           f"stored={summary.get('accepted')} "
                           f"rejected={summary.get('rejected')} {summary.get('reasons') or ''}"
                           f"{summary.get('message') or ''}")
                return
            _print({k: v for k, v in sorted(summary.items())
                    if k not in ("lease_owner", "lease_until")}, fmt)
            return
        time.sleep(0.25)
    _fail(f"no ingestion summary for {name} after {timeout:.0f} s "
          f"(see {config.logs_dir}/file_ingest.log and bridge.log)")


@main.command()
@click.option("--customer", required=True)
@click.option("--limit", type=int, default=20)
@click.option("--format", "fmt", type=FORMATS, default="table")
def uploads(customer: str, limit: int, fmt: str) -> None:
    """Upload summaries, newest first."""
    _stack_env(StackConfig())
    from upstream.adapters.clients import firestore_client
    from upstream.adapters.firestore_store import FirestoreUploads

    rows = FirestoreUploads(firestore_client()).list_uploads(customer, limit)
    keep = ("started_at", "object", "status", "kind", "rows", "accepted", "rejected",
            "reasons", "rejects_object", "error", "duplicate_objects")
    _print([{k: r.get(k) for k in keep if k in r} for r in rows], fmt)


@main.command()
@click.option("--customer", required=True)
@click.option("--kind", type=click.Choice(["claims", "authorizations"]), default="claims")
@click.option("--payer", default=None)
@click.option("--limit", type=int, default=10)
@click.option("--count", "count_only", is_flag=True, help="Only count the stored records.")
@click.option("--format", "fmt", type=FORMATS, default="json")
def records(customer: str, kind: str, payer: str | None, limit: int, count_only: bool,
            fmt: str) -> None:
    """Stored claim lines or authorizations of a tenant."""
    _stack_env(StackConfig())
    from upstream.adapters.clients import firestore_client
    from upstream.adapters.firestore_store import FirestoreRecords

    repo = FirestoreRecords(firestore_client())
    if count_only:
        _print({"customer_id": customer, "kind": kind,
                "count": repo.count(customer, RecordKind(kind))}, fmt)
        return
    _print(repo.list(customer, RecordKind(kind), payer=payer, limit=limit), fmt)


register_detection(main)
register_recovery(main)
register_people(main)
register_payers(main)
register_mcp(main)

if __name__ == "__main__":
    main()
