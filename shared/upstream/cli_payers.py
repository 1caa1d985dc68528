"""Payer intelligence commands of `upstream` (Contract 5): `carc` and `payers`, offline."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from upstream.cli_detect import DATE, FORMATS, PATHS, _history, _last_day

REMARKS_ENV = "UPSTREAM_REMARK_CODES"


def _remarks(path: Path | None) -> dict[str, str]:
    """The practice's licensed RARC list, from `--remark-codes` or UPSTREAM_REMARK_CODES."""
    from upstream.domain.codes.remarks_file import RemarksFileError, read_remarks

    chosen = path or (Path(os.environ[REMARKS_ENV]) if os.environ.get(REMARKS_ENV) else None)
    if chosen is None:
        return {}
    try:
        return read_remarks(chosen.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{chosen}: cannot read the remark codes: {exc}") from exc
    except RemarksFileError as exc:
        raise click.ClickException(f"{chosen}: {exc}") from exc


@click.command()
@click.argument("codes", nargs=-1, required=True)
@click.option("--remark-codes", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=f"The licensed X12 RARC list as CSV (code,description); default "
                   f"${REMARKS_ENV}.")
@click.option("--format", "fmt", type=FORMATS, default="table")
def carc(codes: tuple[str, ...], remark_codes: Path | None, fmt: str) -> None:
    """The denial-code catalogue: each CARC (CO-97 or 97) or RARC (N290) explained."""
    from upstream.domain.codes.catalogue import explain

    remarks = _remarks(remark_codes)
    entries = [explain(code, remarks) for code in codes]
    if fmt == "json":
        click.echo(json.dumps(entries, indent=2))
        return
    for entry in entries:
        click.echo(_carc_text(entry))


def _carc_text(entry: dict[str, Any]) -> str:
    if not entry["known"]:
        return f"{entry['code']}: unknown. {entry['meaning']} {entry['action']}\n"
    lines = [f"{entry['code']}  " + (f"[{entry['category_label']}]" if entry["kind"] == "carc"
                                     else f"[{entry['family']}]"),
             f"  means:  {entry['meaning']}", f"  do:     {entry['action']}"]
    if entry.get("group"):
        lines.append(f"  group:  {entry['group_code']}, {entry['group']}")
    if entry.get("basis"):
        lines.append(f"  basis:  {entry['basis']}")
    if entry.get("official"):
        lines.append(f"  X12:    {entry['official']}")
    if entry.get("inactive"):
        lines.append("  note:   X12 has retired this code.")
    return "\n".join(lines) + "\n"


@click.command()
@click.argument("claims", nargs=-1, type=PATHS)
@click.option("--as-of", type=DATE, default=None,
              help="Data before this day. Default: the day after the files' last date.")
@click.option("--format", "fmt", type=FORMATS, default="table")
def payers(claims: tuple[Path, ...], as_of: Any, fmt: str) -> None:
    """Each payer's behaviour fingerprint and archetype, from claims files or folders."""
    from upstream.domain.aggregates import build_frame, cells_from_documents
    from upstream.domain.payer_behavior.report import payer_report

    documents = _history(claims).claim_documents()
    run_day = as_of.date() if as_of else _last_day(documents) + timedelta(days=1)
    report = payer_report(build_frame(cells_from_documents(documents), end=run_day), run_day)
    if fmt == "json":
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"Payer behaviour as of {run_day} (recent quarter vs the nine months before)\n")
    for entry in report:
        stability = entry["evidence"]["stability"]
        shown = f"  (stability {stability:.0%})" if stability is not None else ""
        if "tentative" in entry["evidence"]["note"]:
            shown += ", tentative"
        click.echo(f"{entry['payer']}: {entry['archetype']}{shown}")
        for sentence in entry["evidence"]["because"] or [entry["evidence"]["note"]]:
            click.echo(f"  {sentence}")
        click.echo("")


def _request(text: str) -> Any:
    """`payer=Aetna,units=480,months=6,renewal=yes[,service=ABA]` → a request."""
    from upstream.domain.specialty.auth_approval import Request

    fields = dict(part.split("=", 1) for part in text.split(",") if "=" in part)
    try:
        return Request(payer=fields["payer"].strip(), units=float(fields["units"]),
                       months=float(fields.get("months", 6)),
                       renewal=fields.get("renewal", "no").strip().lower() in ("yes", "true",
                                                                               "1"),
                       service_type=fields.get("service", "").strip())
    except (KeyError, ValueError) as exc:
        raise click.BadParameter("give payer=NAME,units=N[,months=M,renewal=yes|no,"
                                 "service=S]", param_hint="--request") from exc


@click.command()
@click.argument("files", nargs=-1, type=PATHS)
@click.option("--request", "request_text", default=None,
              help="A request to predict: payer=NAME,units=N,months=M,renewal=yes|no")
@click.option("--format", "fmt", type=FORMATS, default="table")
def approvals(files: tuple[Path, ...], request_text: str | None, fmt: str) -> None:
    """The authorization-approval model learned from decided requests (authorizations files
    with units requested, decision and decision date): how well it did on the latest
    decisions, and, with --request, one request's chances and expected units."""
    from upstream.domain.specialty.auth_approval import decided_requests, fit
    from upstream.offline import offline_context
    from upstream.offline_history import HistoryError, load_history

    request = _request(request_text) if request_text else None
    if not files:
        raise click.UsageError("give at least one authorizations file or folder")
    try:
        history = load_history(files, offline_context())
    except HistoryError as exc:
        raise click.ClickException(str(exc)) from exc
    decided = decided_requests(history.authorization_documents())
    model = fit(decided)
    if model is None:
        raise click.ClickException(
            f"{len(decided)} decided requests with units requested: too few to learn from "
            "(at least 60, with 5 denials)")
    answer: dict[str, Any] = {"decided_requests": len(decided),
                              "evaluation": dict(model.evaluation),
                              "approval_log_odds": dict(zip(model.terms, model.approval,
                                                            strict=True))}
    if request is not None:
        answer["prediction"] = model.predict(request)
    if fmt == "json":
        click.echo(json.dumps(answer, indent=2))
        return
    ev = model.evaluation
    click.echo(f"Learned from {len(decided)} decided requests; judged on the latest "
               f"{ev['holdout_requests']} (from {ev['holdout_from']}): approval AUC "
               f"{ev['approval_auc'] or float('nan'):.3f}, Brier {ev['approval_brier']}, "
               f"approved units off by {ev['units_mae']} on average "
               f"(the payer's average share: {ev['units_mae_payer_average']}).")
    if request is not None:
        p = answer["prediction"]
        click.echo(f"\n{request.payer}, {request.units:g} units over {request.months:g} months: "
                   f"{p['approval_probability']:.0%} likely approved, about "
                   f"{p['expected_units_if_approved']} units if so.")
        for reason in p["reasons"]:
            click.echo(f"  {reason}")


def register(main: click.Group) -> None:
    main.add_command(carc)
    main.add_command(payers)
    main.add_command(approvals)
