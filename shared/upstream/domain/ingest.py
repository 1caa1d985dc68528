"""Rows of an export → validated records or reasoned rejects (DESIGN Contract 2).

Pure: takes an already-opened `Table`, a tenant context, and yields `ClaimLine` /
`Authorization` records or `Rejected` rows in file order. Nothing is dropped silently: every
non-blank row ends up either accepted or rejected with a reason, and the `IngestReport`
counts both.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from upstream.domain import values as v
from upstream.domain.headers import LIST_FIELDS, ColumnMap, map_columns
from upstream.domain.payers import PayerNormalizer
from upstream.domain.records import Authorization, ClaimLine, Outcome, RecordKind, Source
from upstream.domain.table import Row, Table


@dataclass(frozen=True, slots=True)
class TenantContext:
    customer_id: str
    hash_patient: Callable[[str], str]
    payers: PayerNormalizer
    now: datetime


@dataclass(slots=True)
class Rejected:
    line: int
    reason: str
    detail: str
    cells: list[str]


@dataclass(slots=True)
class IngestReport:
    kind: RecordKind
    encoding: str
    delimiter: str
    header: list[str]
    unknown_columns: list[str]
    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def summary(self) -> dict[str, Any]:
        return {"rows": self.rows, "accepted": self.accepted, "rejected": self.rejected,
                "reasons": dict(sorted(self.reasons.items()))}


Parsed = ClaimLine | Authorization | Rejected


def _cell(row: Row, columns: ColumnMap, name: str) -> str | None:
    indexes = columns.columns.get(name)
    if not indexes:
        return None
    if name in LIST_FIELDS:
        parts = [row.cells[i] for i in indexes if i < len(row.cells) and row.cells[i].strip()]
        return ",".join(parts) or None
    i = indexes[0]
    return row.cells[i] if i < len(row.cells) else None


class _RowParser:
    """Shared per-row plumbing: cell lookup, value parsing with the field name in errors."""

    def __init__(self, row: Row, columns: ColumnMap) -> None:
        self.row, self.columns = row, columns

    def get(self, name: str) -> str | None:
        return _cell(self.row, self.columns, name)

    def require(self, name: str, parse: Callable[[str | None], Any]) -> Any:
        value = parse(self.get(name))
        if value is None or value == ():
            raise v.InvalidValue(f"missing_{name}", f"{name} is blank")
        return value


def _claim(p: _RowParser, ctx: TenantContext, line: int | None,
           occurrences: Counter[str]) -> ClaimLine:
    claim_id = p.require("claim_id", v.parse_identifier)
    payer_raw = p.require("payer", v.clean)
    code, glued_mods = p.require("cpt", v.parse_procedure)
    modifiers = tuple(dict.fromkeys(glued_mods + v.parse_modifiers(p.get("modifiers"))))
    service = v.parse_date(p.get("service_date"))
    submitted = v.parse_date(p.get("submitted_date"))
    decided = v.parse_date(p.get("decided_date"))
    if service is None and submitted is None and decided is None:
        raise v.InvalidValue("missing_date", "no service, submitted or decided date")
    billed = v.parse_money(p.get("billed_cents"))
    allowed = v.parse_money(p.get("allowed_cents"))
    paid = v.parse_money(p.get("paid_cents"))
    carcs, mixed_rarcs = v.split_adjustment_codes(p.get("carc_codes"))
    outcome = v.parse_outcome(p.get("outcome")) or v.infer_outcome(
        paid_cents=paid, billed_cents=billed, allowed_cents=allowed,
        decided=decided is not None, has_denial_codes=bool(carcs))
    if outcome in (Outcome.PAID, Outcome.PARTIAL, Outcome.DENIED) and decided is None \
            and service is not None and submitted is not None and submitted < service:
        raise v.InvalidValue("invalid_date", "submitted before the date of service")
    patient = v.clean(p.get("patient_id"))
    numbered = v.parse_line_number(p.get("line"))
    if numbered is not None:
        line_key = f"L{numbered}"
    else:
        natural = f"{code}|{'+'.join(modifiers)}|{service or submitted or decided}"
        occurrences[f"{claim_id}|{natural}"] += 1
        line_key = f"{natural}|{occurrences[f'{claim_id}|{natural}']}"
    return ClaimLine(
        customer_id=ctx.customer_id,
        claim_id=claim_id,
        line=numbered or line or 1,
        line_key=line_key,
        patient_key=ctx.hash_patient(patient) if patient else None,
        payer=ctx.payers.canonical(payer_raw),
        payer_raw=payer_raw,
        plan_type=v.clean(p.get("plan_type")),
        cpt=code,
        modifiers=modifiers,
        units=v.parse_number(p.get("units"), "invalid_units"),
        diagnosis_codes=v.parse_diagnosis_list(p.get("diagnosis_codes")),
        service_date=service,
        submitted_date=submitted,
        decided_date=decided,
        outcome=outcome,
        billed_cents=billed,
        allowed_cents=allowed,
        paid_cents=paid,
        carc_codes=carcs,
        rarc_codes=tuple(dict.fromkeys(v.parse_rarc_list(p.get("rarc_codes")) + mixed_rarcs)),
        authorization_number=v.parse_identifier(p.get("authorization_number")),
        provider_npi=v.parse_npi(p.get("provider_npi")),
        provider_credential=v.clean(p.get("provider_credential")),
        minutes=v.parse_int(p.get("minutes"), "invalid_minutes"),
        place_of_service=v.parse_identifier(p.get("place_of_service")),
        source=Source.CSV,
        updated_at=ctx.now,
    )


def _authorization(p: _RowParser, ctx: TenantContext) -> Authorization:
    number = p.require("authorization_number", v.parse_identifier)
    payer_raw = p.require("payer", v.clean)
    start = p.require("start_date", v.parse_date)
    end = p.require("end_date", v.parse_date)
    if end < start:
        raise v.InvalidValue("invalid_date_range", f"ends {end} before it starts {start}")
    authorized = v.parse_number(p.get("units_authorized"), "invalid_units")
    used = v.parse_number(p.get("units_used"), "invalid_units")
    requested = v.parse_number(p.get("units_requested"), "invalid_units")
    decision = v.parse_decision(p.get("decision"))
    decided = v.parse_date(p.get("decision_date"))
    for units in (authorized, used, requested):
        if units is not None and units < 0:
            raise v.InvalidValue("invalid_units", f"{units:g} units cannot be negative")
    patient = v.clean(p.get("patient_id"))
    return Authorization(
        customer_id=ctx.customer_id,
        authorization_number=number,
        patient_key=ctx.hash_patient(patient) if patient else None,
        payer=ctx.payers.canonical(payer_raw),
        payer_raw=payer_raw,
        service_type=v.clean(p.get("service_type")),
        cpt_codes=v.parse_code_list(p.get("cpt_codes")),
        start_date=start,
        end_date=end,
        units_authorized=authorized,
        units_used=used,
        units_requested=requested,
        decision=decision,
        decision_date=decided,
        source=Source.CSV,
        updated_at=ctx.now,
    )


def _row_fingerprint(cells: list[str]) -> bytes:
    return hashlib.blake2b("\x1f".join(c.strip() for c in cells).encode(), digest_size=12).digest()


def parse_records(table: Table, kind: RecordKind, ctx: TenantContext,
                  ) -> tuple[IngestReport, Iterator[Parsed]]:
    """The report fills in as the iterator is consumed.

    Exact duplicate rows are rejected as `duplicate_row` (the first is kept). Claim lines
    without a line-number column are numbered in order of appearance within their claim
    and identified by what they are (see `ClaimLine.line_key`). Memory grows with distinct
    rows (a 12-byte fingerprint and a counter key each), not with file size in bytes.
    """
    columns = map_columns(table.header, kind)
    report = IngestReport(kind, table.encoding, table.delimiter, table.header,
                          columns.unknown + columns.ignored_duplicates)
    return report, _parse(table, kind, columns, ctx, report)


# Shown in a rejects file instead of a raw patient id: enough to match the row with the
# patient key Upstream shows everywhere else, never the identifier itself.
PATIENT_KEY_SHOWN = 8


def _redactor(columns: ColumnMap, ctx: TenantContext,
              width: int) -> Callable[[list[str]], list[str]]:
    """A rejected row as the rejects file keeps it: the cells Upstream reads (claim id, the
    bad cell, …) as they were, the patient id as the start of its key, and columns Upstream
    does not read (names, birth dates, addresses an export may carry) left out."""
    patient = set(columns.columns.get("patient_id", []))
    read = {i for indexes in columns.columns.values() for i in indexes}

    def redact(cells: list[str]) -> list[str]:
        kept = []
        for i, cell in enumerate(cells[:width]):
            if i in patient and cell.strip():
                kept.append(f"[patient key {ctx.hash_patient(cell.strip())[:PATIENT_KEY_SHOWN]}]")
            else:
                kept.append(cell if i in read else "")
        return kept

    return redact


def _parse(table: Table, kind: RecordKind, columns: ColumnMap, ctx: TenantContext,
           report: IngestReport) -> Iterator[Parsed]:
    redact = _redactor(columns, ctx, len(table.header))
    seen_rows: set[bytes] = set()
    lines_per_claim: Counter[str] = Counter()
    occurrences: Counter[str] = Counter()
    first_row_of: dict[str, int] = {}
    width = len(table.header)
    rows = iter(table.rows)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            # The csv module cannot resynchronise after a runaway quote: the rest of the file
            # is one broken field. Report it as a reject rather than losing it silently.
            report.rows += 1
            yield _reject(report, Rejected(-1, "malformed_csv", f"{exc}; reading stopped", []))
            return
        report.rows += 1
        extra = [c for c in row.cells[width:] if c.strip()]
        if extra:
            yield _reject(report, Rejected(row.line, "too_many_fields",
                                           f"{len(row.cells)} cells for {width} columns "
                                           "(an unquoted delimiter inside a value?)",
                                           redact(row.cells)))
            continue
        fingerprint = _row_fingerprint(row.cells)
        if fingerprint in seen_rows:
            yield _reject(report, Rejected(row.line, "duplicate_row",
                                           "same as an earlier row; stored once",
                                           redact(row.cells)))
            continue
        seen_rows.add(fingerprint)
        parser = _RowParser(row, columns)
        try:
            record: ClaimLine | Authorization
            if kind is RecordKind.AUTHORIZATIONS:
                record = _authorization(parser, ctx)
            else:
                claim_id = v.parse_identifier(parser.get("claim_id")) or ""
                numbered = "line" in columns.columns
                line = None if numbered else lines_per_claim[claim_id] + 1
                record = _claim(parser, ctx, line, occurrences)
                if not numbered:
                    lines_per_claim[claim_id] += 1
        except v.InvalidValue as exc:
            yield _reject(report, Rejected(row.line, exc.reason, exc.detail, redact(row.cells)))
            continue
        except ValidationError as exc:
            first = exc.errors()[0]
            reason = "spreadsheet_formula" if "spreadsheet formula" in first["msg"] \
                else "invalid_record"
            yield _reject(report, Rejected(row.line, reason,
                                           f"{'.'.join(map(str, first['loc']))}: {first['msg']}",
                                           redact(row.cells)))
            continue
        if (earlier := first_row_of.setdefault(record.doc_id, row.line)) != row.line:
            yield _reject(report, Rejected(row.line, "duplicate_line",
                                           f"same claim line or authorization as row {earlier} "
                                           "with different values; the first is kept",
                                           redact(row.cells)))
            continue
        report.accepted += 1
        yield record


def _reject(report: IngestReport, rejected: Rejected) -> Rejected:
    report.rejected += 1
    report.reasons[rejected.reason] += 1
    return rejected
