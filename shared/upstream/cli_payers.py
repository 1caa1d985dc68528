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


def register(main: click.Group) -> None:
    main.add_command(carc)
    main.add_command(payers)
