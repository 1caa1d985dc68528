"""Detection commands of `upstream` (Contract 5): `analyze` and `backtest` offline, `run` and
`alerts` on the local stack. Offline commands run the same domain code the functions run."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from upstream.domain.table import UnreadableFile
from upstream.stack.config import StackConfig

if TYPE_CHECKING:  # scipy and statsmodels load with the commands that use them
    from upstream.domain.detect.findings import Alert

FORMATS = click.Choice(["json", "table"])
DATE = click.DateTime(["%Y-%m-%d"])
METHODS = click.Choice(["ours", "seeds"])
SCHEDULES = click.Choice(["daily", "weekly"])


def _stack_env(config: StackConfig) -> None:
    for key, value in config.emulator_env().items():
        os.environ.setdefault(key, value)


def _documents(path: Path, kind: str = "claims", ctx: Any = None) -> list[dict[str, Any]]:
    """Records of a CSV as stored documents. Pass one `ctx` for files that must link (the
    offline patient-hash key lives for one context only)."""
    from upstream.domain.records import RecordKind
    from upstream.offline import offline_context, read_file

    try:
        with path.open("rb") as stream:
            _, records = read_file(stream, RecordKind(kind), ctx or offline_context())
            return [record.to_document() for record in records]
    except UnreadableFile as exc:
        raise click.ClickException(f"{path}: {exc}") from exc


def _last_day(documents: list[dict[str, Any]]) -> date:
    days = [d.get(k) for d in documents
            for k in ("decided_date", "submitted_date", "service_date") if d.get(k)]
    if not days:
        raise click.ClickException("no dated claim lines in the file")
    return max(date.fromisoformat(str(day)) for day in days)


def _emit(alerts: list[Alert], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps([a.to_document() for a in alerts], indent=1, default=str))
        return
    if not alerts:
        click.echo("no alerts")
    for alert in alerts:
        click.echo(f"{alert.created_at}  {alert.severity:8} {alert.type:22} {alert.title}")


PATHS = click.Path(exists=True, path_type=Path)


def _history(paths: tuple[Path, ...], ctx: Any = None) -> Any:
    """Claims (and any authorizations and 835s) of several files or folders, joined."""
    from upstream.offline import offline_context
    from upstream.offline_history import HistoryError, load_history

    if not paths:
        raise click.UsageError("give at least one claims file or folder")
    try:
        history = load_history(paths, ctx or offline_context())
    except HistoryError as exc:
        raise click.ClickException(str(exc)) from exc
    if not history.claims:
        raise click.ClickException("no claim lines in the files given")
    return history


@click.command()
@click.argument("claims", nargs=-1, type=PATHS)
@click.option("--authorizations", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Authorizations CSV for the authorization calendar (one found "
                                 "among CLAIMS is used too).")
@click.option("--as-of", type=DATE, default=None,
              help="Run day (data before it). Default: the day after the files' last date.")
@click.option("--method", type=METHODS, default="ours")
@click.option("--fee-schedule", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="CSV payer,cpt,rate (contracted dollars per unit): alerts "
                                 "when a payer allows less.")
@click.option("--format", "fmt", type=FORMATS, default="json")
def analyze(claims: tuple[Path, ...], authorizations: Path | None, as_of: Any, method: str,
            fee_schedule: Path | None, fmt: str) -> None:
    """Every detector as of one day, on claims files or folders (a year of monthly exports,
    any layout, 835s posted after them); prints the alerts."""
    from upstream.domain.aggregates import build_frame, cells_from_documents
    from upstream.domain.detect.authcal import calendar
    from upstream.domain.detect.findings import merge_into_alerts
    from upstream.domain.detect.runner import MethodSet, Schedule, run_findings
    from upstream.offline import offline_context

    ctx = offline_context()
    history = _history(claims, ctx)
    documents = history.claim_documents()
    run_day = as_of.date() if as_of else _last_day(documents) + timedelta(days=1)
    frame = build_frame(cells_from_documents(documents), end=run_day)
    findings = run_findings(frame, run_day, Schedule.WEEKLY, MethodSet(method))
    if fee_schedule is not None:
        findings += _contract(fee_schedule, frame, run_day)
    findings = [_enrich(finding, documents) for finding in findings]
    granted = history.authorization_documents()
    if authorizations is not None:
        granted += _documents(authorizations, "authorizations", ctx)
    if granted:
        findings += calendar(granted, documents, run_day)
    _emit(merge_into_alerts("offline", findings, [], run_day), fmt)


def _contract(path: Path, frame: Any, run_day: date) -> list[Any]:
    from upstream.domain.detect.underpay import contract_findings
    from upstream.domain.practice.fee_schedule import (
        FeeScheduleError,
        canonical_rows,
        parse_fee_schedule,
    )

    try:
        rows = parse_fee_schedule(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, FeeScheduleError) as exc:
        raise click.ClickException(f"{path}: {exc}") from exc
    return contract_findings(frame, run_day, canonical_rows(rows))


def _enrich(finding: Any, documents: list[dict[str, Any]]) -> Any:
    from upstream.domain.detect.findings import affected_filter, with_affected_lines

    wanted = affected_filter(finding)
    if wanted is None:
        return finding
    payer, first, end = wanted
    return with_affected_lines(finding, [
        d for d in documents if d.get("payer") == payer and d.get("outcome") == "DENIED"
        and first <= str(d.get("decided_date") or "") < end])


@click.command("backtest")
@click.argument("claims", nargs=-1, type=PATHS)
@click.option("--from", "first", type=DATE, required=True)
@click.option("--to", "last", type=DATE, required=True)
@click.option("--method", type=METHODS, default="ours")
@click.option("--format", "fmt", type=FORMATS, default="json")
def backtest_command(claims: tuple[Path, ...], first: Any, last: Any, method: str,
                     fmt: str) -> None:
    """Replays the production schedule over FROM..TO; each run sees only what was known on its
    day. Prints every alert raised, `created_at` = the day of the run that raised it."""
    from upstream.domain.aggregates import cells_from_documents
    from upstream.domain.detect.runner import MethodSet, backtest

    if last < first:
        raise click.ClickException("--to is before --from")
    documents = _history(claims).claim_documents()
    alerts = backtest("offline", cells_from_documents(documents), first.date(), last.date(),
                      MethodSet(method))
    _emit(alerts, fmt)


@click.command("run")
@click.argument("schedule", type=SCHEDULES)
@click.option("--customer", default=None)
@click.option("--all", "all_tenants", is_flag=True)
@click.option("--as-of", type=DATE, default=None)
@click.option("--timeout", type=float, default=180.0)
@click.option("--settle/--no-settle", default=True,
              help="First wait until the aggregator has seen every stored claim line.")
@click.option("--format", "fmt", type=FORMATS, default="json")
def run_command(schedule: str, customer: str | None, all_tenants: bool, as_of: Any,
                timeout: float, settle: bool, fmt: str) -> None:
    """Publish what Cloud Scheduler publishes on `detector-runs`, wait for the tenants' runs."""
    if bool(customer) == all_tenants:
        raise click.ClickException("give exactly one of --customer C or --all")
    config = StackConfig()
    _stack_env(config)
    from upstream.adapters.clients import firestore_client, publisher_client
    from upstream.adapters.firestore_alerts import FirestoreAlerts
    from upstream.adapters.pubsub import PubSubPublisher
    from upstream.events import DetectorRun
    from upstream.services.detector_runs import run_id

    if settle:
        _settle(tenants_of(customer), time.monotonic() + timeout)
    run_day = as_of.date() if as_of else None
    message = DetectorRun(run=schedule, customer=customer or "*", as_of=run_day)
    tenants = tenants_of(customer)
    day = run_day or datetime.now(UTC).date()
    published_at = datetime.now(UTC).isoformat()
    PubSubPublisher(publisher_client(), config.project).publish(
        "detector-runs", message.to_bytes(), {"run": schedule})
    alerts = FirestoreAlerts(firestore_client())
    wanted = run_id(message, day)
    deadline = time.monotonic() + timeout
    results: dict[str, Any] = {}
    while time.monotonic() < deadline and len(results) < len(tenants):
        for tenant in tenants:
            if tenant not in results:
                found = alerts.get_run(tenant, wanted)
                if found and found.get("started_at", "") >= published_at:
                    results[tenant] = found
        time.sleep(0.3)
    missing = [t for t in tenants if t not in results]
    out = {"run": schedule, "as_of": day.isoformat(), "tenants": results, "missing": missing}
    click.echo(json.dumps(out, indent=1, default=str) if fmt == "json" else
               "\n".join(f"{t}: {r.get('findings')} findings, {r.get('alerts_written')} alerts"
                         for t, r in results.items()) or "no tenant finished")
    if missing:
        raise click.ClickException(f"no finished run for {', '.join(missing)} after "
                                   f"{timeout:.0f} s (see {config.logs_dir}/detectors.log)")


def tenants_of(customer: str | None) -> list[str]:
    from upstream.adapters.clients import firestore_client
    from upstream.adapters.firestore_store import FirestoreTenants

    return [customer] if customer else FirestoreTenants(firestore_client()).list_ids()


def _settle(tenants: list[str], deadline: float) -> None:
    """The aggregator works from the `claims` topic a little behind ingestion; a run started
    before it caught up would judge part of the data."""
    from upstream.adapters.clients import firestore_client
    from upstream.adapters.firestore_aggregates import FirestoreAggregates
    from upstream.adapters.firestore_store import FirestoreRecords
    from upstream.domain.records import RecordKind

    records, aggregates = FirestoreRecords(firestore_client()), FirestoreAggregates(
        firestore_client())
    for tenant in tenants:
        while aggregates.lines_aggregated(tenant) < records.count(tenant, RecordKind.CLAIMS):
            if time.monotonic() > deadline:
                raise click.ClickException(f"the aggregator has not caught up for {tenant}")
            time.sleep(0.5)


@click.command("alerts")
@click.option("--customer", required=True)
@click.option("--status", default=None)
@click.option("--format", "fmt", type=FORMATS, default="table")
def alerts_command(customer: str, status: str | None, fmt: str) -> None:
    """A tenant's alerts on the local stack."""
    config = StackConfig()
    _stack_env(config)
    from upstream.adapters.clients import firestore_client
    from upstream.adapters.firestore_alerts import FirestoreAlerts

    rows = FirestoreAlerts(firestore_client()).list(customer, status)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=1, default=str))
        return
    for row in rows or [{"title": "no alerts"}]:
        click.echo(f"{row.get('created_at', ''):10}  {row.get('severity', ''):8} "
                   f"{row.get('status', ''):8} {row.get('type', ''):22} {row.get('title')}")


@click.command("map-fhir")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["json"]), default="json")
def map_fhir(file: Path, fmt: str) -> None:
    """FHIR JSON or NDJSON → claim lines, outcome updates and coverage facts, one JSON object
    per line on stdout; the report (issues by reason, ignored types) on stderr."""
    import dataclasses

    from upstream.domain.fhir_input import iter_resources
    from upstream.domain.fhir_map import MappingResult, map_resource
    from upstream.offline import offline_context

    ctx, total = offline_context(), MappingResult()
    for resource in iter_resources(file.read_bytes()):
        total.extend(map_resource(resource, ctx))
    for line in total.lines:
        click.echo(json.dumps({"record_type": "claim_line", **line.to_document()}))
    for kind, items in (("outcome", total.outcomes), ("coverage", total.coverages)):
        for item in items:
            click.echo(json.dumps({"record_type": kind, **dataclasses.asdict(item)},
                                  default=str))
    reasons: dict[str, int] = {}
    for issue in total.issues:
        reasons[issue.reason] = reasons.get(issue.reason, 0) + 1
    click.echo(json.dumps({"lines": len(total.lines), "outcomes": len(total.outcomes),
                           "coverages": len(total.coverages), "issues": reasons,
                           "ignored": total.ignored, "versions": total.versions,
                           "examples": [dataclasses.asdict(i) for i in total.issues[:5]]}),
               err=True)


@click.command("score")
@click.argument("claim", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--history", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Claims CSV whose decided lines are the denial history.")
@click.option("--authorizations", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Authorizations CSV (prior-auth checks).")
@click.option("--as-of", type=DATE, default=None,
              help="History before this day. Default: the day after the history's last date.")
@click.option("--format", "fmt", type=FORMATS, default="json")
def score_command(claim: Path, history: Path | None, authorizations: Path | None, as_of: Any,
                  fmt: str) -> None:
    """The pre-submission risk score of CLAIM (our claim JSON or a FHIR Claim): score,
    category, recommendation, each factor with its points and evidence, and fixes."""
    from upstream.domain import safe_json
    from upstream.domain.aggregates import cells_from_documents
    from upstream.domain.payers import PayerNormalizer
    from upstream.domain.risk.check import CheckError, check, parse_claim
    from upstream.domain.risk.rules import default_rules
    from upstream.domain.risk.score import DenialHistory
    from upstream.offline import offline_context

    try:
        lines = parse_claim(safe_json.loads_object(claim.read_bytes()), PayerNormalizer())
    except safe_json.UnsafeJson as exc:
        raise click.ClickException(f"{claim}: not a JSON object we accept ({exc.detail})") \
            from None
    except CheckError as exc:
        raise click.ClickException(f"{claim}: {exc}") from None
    ctx = offline_context()
    documents = _documents(history, ctx=ctx) if history else []
    day = as_of.date() if as_of else (_last_day(documents) + timedelta(days=1)
                                      if documents else datetime.now(UTC).date())
    auths = _documents(authorizations, "authorizations", ctx) if authorizations else []
    answer = check(lines, DenialHistory.from_cells(cells_from_documents(documents), day),
                   default_rules(), auths)
    if fmt == "json":
        click.echo(json.dumps(answer, indent=2, default=str))
        return
    click.echo(f"claim {answer['claim_id']}: {answer['score']} {answer['category']} → "
               f"{answer['recommendation']}")
    for row in answer["lines"]:
        reasons = ", ".join(f"{f['name']} +{f['points']}" for f in row["factors"] if f["points"])
        fixes = "; ".join(f"{x['action']} {x.get('modifier', '')} ({x['confidence']}%)"
                          for x in row["fixes"])
        click.echo(f"  line {row['line']}: {row['score']:3d} {row['category']:6} "
                   f"{reasons or 'no risk factor'}{'  fix: ' + fixes if fixes else ''}")


def register(group: click.Group) -> None:
    for command in (analyze, backtest_command, run_command, alerts_command, map_fhir,
                    score_command):
        group.add_command(command)
