"""X12 835 (Health Care Claim Payment/Advice) → what the payer decided, claim by claim and
service line by service line.

Parsing is pyx12's: it walks each segment against the TR3 map for the interchange's version
(005010X221A1, 004010X091A1), so loops (2100 claim, 2110 service), composites (`HC:97153:HN`)
and the envelope checks (SE/GE/IEA counts and control numbers) are the library's, not a
hand-rolled `split("~")`. What is ours is the policy:

- an envelope error (interchange, group or transaction-set level: a wrong segment count, a
  control number that does not match) rejects the whole file: counts that do not add up mean
  the file was truncated or edited, and half a remittance posted is worse than none;
- a segment or element that breaks the TR3 rules but not the money (a missing payer contact, a
  malformed optional date) is a warning, reported in the summary: payers send such files every
  week and refusing them would stop the practice's posting;
- a claim we cannot use (no claim id, an amount that is not a number) is rejected alone, with
  its segment number and reason.

Nothing here logs: pyx12 logs each finding with the offending value, which can be a patient
name, so its loggers are silenced and the findings are returned instead.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pyx12.error_handler
import pyx12.errors
import pyx12.params
import pyx12.x12context

from upstream.domain import values as v
from upstream.domain.records import Outcome

logging.getLogger("pyx12").setLevel(logging.CRITICAL + 1)

# Findings at these levels break the envelope (counts, control numbers): the file is refused.
_ENVELOPE_LEVELS = ("isa", "gs", "st")
# CLP02 claim status codes (X12 5010 TR3 §1.10.2.1.2).
CLAIM_DENIED = "4"
CLAIM_REVERSAL = "22"
# Adjustments that do not mean the payer refused anything: contractual write-down to the fee
# schedule (45), sequestration (253) and the patient's share (group PR: deductible 1,
# coinsurance 2, copay 3 …). A line paid with only these is PAID, not PARTIAL.
_ROUTINE_CARCS = frozenset({"45", "253"})


class RemittanceUnreadable(ValueError):
    """The file cannot be posted at all; `problems` say where and why."""

    def __init__(self, reason: str, message: str,
                 problems: tuple[X12Problem, ...] = ()) -> None:
        super().__init__(message)
        self.reason = reason
        self.problems = problems


@dataclass(frozen=True, slots=True)
class X12Problem:
    segment: int
    segment_id: str
    level: str  # isa | gs | st | seg | ele | claim
    reason: str

    @property
    def fatal(self) -> bool:
        return self.level in _ENVELOPE_LEVELS

    def describe(self) -> str:
        return f"segment {self.segment} ({self.segment_id}): {self.reason}"


@dataclass(frozen=True, slots=True)
class Adjustment:
    group: str  # CO contractual, PR patient, OA other, PI payer-initiated, CR correction
    carc: str
    amount_cents: int

    @property
    def code(self) -> str:
        return f"{self.group}-{self.carc}"

    @property
    def routine(self) -> bool:
        return self.group == "PR" or self.carc in _ROUTINE_CARCS


@dataclass(frozen=True, slots=True)
class RemitService:
    cpt: str
    modifiers: tuple[str, ...]
    billed_cents: int
    paid_cents: int
    allowed_cents: int | None
    units: float | None
    service_date: date | None
    line_ref: str | None  # REF*6R: the line item control number the provider sent
    adjustments: tuple[Adjustment, ...]
    rarc_codes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RemitClaim:
    claim_id: str
    status_code: str
    billed_cents: int
    paid_cents: int
    payer_raw: str
    payer_claim_number: str | None
    decided_date: date | None
    adjustments: tuple[Adjustment, ...]
    rarc_codes: tuple[str, ...]
    services: tuple[RemitService, ...]
    segment: int

    @property
    def reversal(self) -> bool:
        return self.status_code == CLAIM_REVERSAL


@dataclass(slots=True)
class Remittance:
    version: str
    transactions: int = 0
    segments: int = 0
    claims: list[RemitClaim] = field(default_factory=list)
    problems: list[X12Problem] = field(default_factory=list)

    @property
    def warnings(self) -> list[X12Problem]:
        return [p for p in self.problems if not p.fatal]


def looks_like_x12(head: bytes) -> bool:
    """An interchange starts with `ISA` (after an optional BOM and blank lines)."""
    return head.lstrip(b"\xef\xbb\xbf \t\r\n")[:3] == b"ISA"


def decode(data: bytes) -> str:
    """X12 is ASCII by rule, Latin-1 in practice (names with accents); a BOM is an editor's."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return text.lstrip(" \t\r\n")


class _Findings(pyx12.error_handler.err_handler):  # type: ignore[misc]
    """pyx12's error tree, also kept as a flat list of (level, segment ordinal, reason)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, int, str]] = []
        self.line = 0

    def add_seg(self, map_node: Any, seg_data: Any, seg_count: int, cur_line: int,
                ls_id: str | None) -> None:
        self.line = cur_line
        super().add_seg(map_node, seg_data, seg_count, cur_line, ls_id)

    def _note(self, level: str, reason: str, line: int | None = None) -> None:
        self.found.append((level, line or self.line, reason))

    def isa_error(self, err_cde: str, err_str: str) -> None:
        self._note("isa", err_str)
        super().isa_error(err_cde, err_str)

    def gs_error(self, err_cde: str, err_str: str) -> None:
        self._note("gs", err_str)
        super().gs_error(err_cde, err_str)

    def st_error(self, err_cde: str, err_str: str) -> None:
        self._note("st", err_str)
        super().st_error(err_cde, err_str)

    def seg_error(self, err_cde: str, err_str: str, err_value: str | None = None,
                  src_line: int | None = None) -> None:
        self._note("seg", err_str, src_line)
        super().seg_error(err_cde, err_str, err_value, src_line)

    def ele_error(self, err_cde: str, err_str: str, bad_value: str | None,
                  refdes: str | None = None) -> None:
        self._note("ele", err_str)
        super().ele_error(err_cde, err_str, bad_value, refdes)


def _segment_ids(text: str) -> list[str]:
    """Segment ids in file order, only to name the segment a finding points at. ISA is fixed
    width: its 106th character is the segment terminator."""
    if len(text) < 106:
        return []
    terminator = text[105]
    return [s.strip().split(text[3], 1)[0] for s in text.split(terminator) if s.strip()]


def read_835(data: bytes) -> Remittance:
    """Raises `RemittanceUnreadable` when the file is not an 835 interchange or its envelope
    is broken; otherwise returns every usable claim and every finding."""
    if not looks_like_x12(data[:512]):
        raise RemittanceUnreadable("not_x12", "no ISA interchange header: not an X12 file")
    text = decode(data)
    ids = _segment_ids(text)

    def name(ordinal: int) -> str:
        found = ids[ordinal - 1] if 0 < ordinal <= len(ids) else "?"
        return found if re.fullmatch(r"[A-Z][A-Z0-9]{1,2}", found) else "?"

    findings = _Findings()
    result = Remittance(version="")
    walker = _Walker(result)
    reader: Any = None

    def where() -> int:
        return int(reader.src.get_cur_line()) if reader is not None else findings.line

    try:
        reader = pyx12.x12context.X12ContextReader(pyx12.params.params(), findings,
                                                   io.StringIO(text))
        result.version = str(reader.src.icvn or "")
        nodes = list(reader.iter_segments("2100"))
        result.segments = int(reader.cur_seg_count)
    except (pyx12.errors.X12Error, pyx12.errors.EngineError, pyx12.errors.X12PathError,
            pyx12.errors.IsValidError, pyx12.errors.XML_Reader_Error) as exc:
        # The messages quote the offending segment; keep only its id, never its values.
        raise _unreadable(where(), name(where()), _without_values(str(exc))) from None
    except (IndexError, KeyError, ValueError, TypeError, AttributeError) as exc:
        # pyx12 4.0 trips over some garbage (a CAS of placeholders raises IndexError inside
        # its validator): still a malformed file, reported where the reader stopped.
        raise _unreadable(where(), name(where()),
                          f"the X12 reader could not read this segment ({type(exc).__name__})",
                          ) from None
    for node in nodes:
        walker.visit(node)
    result.problems = [X12Problem(line, name(line), level, reason)
                       for level, line, reason in findings.found] + walker.problems
    for closing, opened_at in walker.open_envelopes:
        result.problems.append(X12Problem(opened_at, name(opened_at), "isa",
                                          f"no {closing} closes it: the file is truncated"))
    if walker.not_835:
        raise RemittanceUnreadable("not_835", f"transaction set {walker.not_835} is not an 835")
    fatal = tuple(p for p in result.problems if p.fatal)
    if fatal:
        raise RemittanceUnreadable("malformed_835", "; ".join(p.describe() for p in fatal[:5]),
                                   fatal)
    if result.transactions == 0:
        raise RemittanceUnreadable("malformed_835", "no ST*835 transaction set in the file")
    return result


def _unreadable(line: int, segment_id: str, reason: str) -> RemittanceUnreadable:
    problem = X12Problem(line, segment_id, "isa", reason)
    if line <= 0:  # before the first segment was counted: the ISA itself
        problem = X12Problem(1, "ISA", "isa", reason)
    return RemittanceUnreadable("malformed_835", problem.describe(), (problem,))


def _without_values(message: str) -> str:
    """pyx12 exception texts end with the raw segment (`… for ISA*00*…`): cut it off."""
    for marker in (" for ISA", " for GS", ": ST*", ": ISA*"):
        if marker in message:
            return message.split(marker, 1)[0]
    return message[:200]


class _Walker:
    """Carries the header context (payer, payment date) of the current transaction set into
    each 2100 claim loop pyx12 hands over."""

    def __init__(self, result: Remittance) -> None:
        self.result = result
        self.problems: list[X12Problem] = []
        self.payer = ""
        self.paid_on: date | None = None
        self.produced_on: date | None = None
        self.not_835 = ""
        self.open_envelopes: list[tuple[str, int]] = []  # (closing segment, opened at)

    def visit(self, node: Any) -> None:
        if node.id == "2100":
            self._claim(node)
            return
        seg = node.seg_data
        if seg is None:
            return
        seg_id = seg.get_seg_id()
        closes = {"ISA": "IEA", "GS": "GE", "ST": "SE"}
        if seg_id in closes:
            self.open_envelopes.append((closes[seg_id], int(node.cur_line_number or 0)))
        elif seg_id in closes.values() and self.open_envelopes \
                and self.open_envelopes[-1][0] == seg_id:
            self.open_envelopes.pop()
        if seg_id == "ST":
            self.result.transactions += 1
            if seg.get_value("ST01") != "835":
                self.not_835 = str(seg.get_value("ST01"))
            self.payer, self.paid_on, self.produced_on = "", None, None
        elif seg_id == "BPR":
            self.paid_on = _date_or_none(seg.get_value("BPR16"))
        elif seg_id == "DTM" and seg.get_value("DTM01") == "405":
            self.produced_on = _date_or_none(seg.get_value("DTM02"))
        elif seg_id == "N1" and seg.get_value("N101") == "PR":
            self.payer = v.clean(seg.get_value("N102")) or ""

    def _claim(self, node: Any) -> None:
        line = int(node.cur_line_number or 0)
        misplaced = _misplaced(node)
        if misplaced is not None:
            self.problems.append(X12Problem(
                misplaced[0], misplaced[1], "claim",
                f"{misplaced[1]} does not fit the 835 claim loop (an unknown qualifier, or a "
                f"composite not split by the ISA16 separator): claim at segment {line} not posted"))
            return
        try:
            claim = _read_claim(node, self.payer, self.paid_on or self.produced_on, line)
        except v.InvalidValue as exc:
            self.problems.append(X12Problem(line, "CLP", "claim", f"{exc.reason}: {exc}"))
            return
        self.result.claims.append(claim)


def _misplaced(loop: Any) -> tuple[int, str] | None:
    """pyx12 files a segment it cannot place under the previous one's name (an SVC with an
    unknown qualifier ends up as a `DTM` node): such a claim would lose service lines."""
    for child in loop.children:
        if child.id in ("2110",):
            found = _misplaced(child)
            if found:
                return found
            continue
        seg = child.seg_data
        if seg is not None and seg.get_seg_id() != child.id:
            return int(child.cur_line_number or 0), seg.get_seg_id()
    return None


def _date_or_none(text: str | None) -> date | None:
    try:
        return v.parse_date(text)
    except v.InvalidValue:
        return None


def _money(seg: Any, ref: str, required: bool = True) -> int:
    cents = v.parse_money(seg.get_value(ref))
    if cents is None:
        if required:
            raise v.InvalidValue("missing_amount", f"{ref} is blank")
        return 0
    return cents


def _adjustments(node: Any) -> tuple[Adjustment, ...]:
    """CAS carries up to six (reason, amount, quantity) triplets under one group code."""
    found: list[Adjustment] = []
    for cas in node.select("CAS"):
        seg = cas.seg_data
        group = (seg.get_value("CAS01") or "").strip().upper()
        if group not in ("CO", "PR", "OA", "PI", "CR"):
            raise v.InvalidValue("invalid_carc_group", f"CAS01 {group[:4]!r} is not a group code")
        for reason_at in (2, 5, 8, 11, 14, 17):
            reason = v.clean(seg.get_value(f"CAS{reason_at:02d}"))
            if reason is None:
                continue
            codes = v.parse_carc_list(reason)
            found.append(Adjustment(group, codes[0].split("-")[-1],
                                    _money(seg, f"CAS{reason_at + 1:02d}")))
    return tuple(found)


def _read_claim(node: Any, payer: str, decided: date | None, line: int) -> RemitClaim:
    clp = node.get_first_matching_segment("CLP")
    if clp is None:
        raise v.InvalidValue("missing_clp", "claim loop without CLP")
    claim_id = v.clean(clp.get_value("CLP01"))
    if claim_id is None:
        raise v.InvalidValue("missing_claim_id", "CLP01 (patient control number) is blank")
    remarks: list[str] = []
    for moa in node.select("MOA"):
        remarks += [c for n in range(3, 8) if (c := v.clean(moa.seg_data.get_value(f"MOA{n:02d}")))]
    services = tuple(_read_service(svc) for svc in node.select("2110"))
    return RemitClaim(
        claim_id=claim_id,
        status_code=v.clean(clp.get_value("CLP02")) or "",
        billed_cents=_money(clp, "CLP03"),
        paid_cents=_money(clp, "CLP04"),
        payer_raw=payer,
        payer_claim_number=v.clean(clp.get_value("CLP07")),
        decided_date=decided,
        adjustments=_adjustments(node),
        rarc_codes=tuple(dict.fromkeys(remarks)),
        services=services,
        segment=line,
    )


def _read_service(node: Any) -> RemitService:
    svc = node.get_first_matching_segment("SVC")
    procedure = v.parse_procedure(":".join(
        p for n in range(2, 7) if (p := v.clean(svc.get_value(f"SVC01-{n}")))))
    if procedure is None:
        raise v.InvalidValue("missing_cpt", "SVC01 carries no procedure code")
    code, modifiers = procedure
    service_date = None
    for dtm in node.select("DTM"):
        if dtm.seg_data.get_value("DTM01") in ("472", "150"):
            service_date = _date_or_none(dtm.seg_data.get_value("DTM02"))
            break
    line_ref = None
    for ref in node.select("REF"):
        if ref.seg_data.get_value("REF01") == "6R":
            line_ref = v.clean(ref.seg_data.get_value("REF02"))
    allowed = None
    for amt in node.select("AMT"):
        if amt.seg_data.get_value("AMT01") == "B6":
            allowed = _money(amt.seg_data, "AMT02")
    units_text = v.clean(svc.get_value("SVC05"))
    remarks = [c for lq in node.select("LQ") if lq.seg_data.get_value("LQ01") == "HE"
               and (c := v.clean(lq.seg_data.get_value("LQ02")))]
    return RemitService(
        cpt=code, modifiers=modifiers,
        billed_cents=_money(svc, "SVC02"), paid_cents=_money(svc, "SVC03"),
        allowed_cents=allowed,
        units=_units(units_text),
        service_date=service_date, line_ref=line_ref,
        adjustments=_adjustments(node), rarc_codes=tuple(dict.fromkeys(remarks)))


def _units(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise v.InvalidValue("invalid_units", f"SVC05 {text[:12]!r} is not a number") from None


def service_outcome(claim: RemitClaim, paid_cents: int,
                    adjustments: tuple[Adjustment, ...]) -> Outcome:
    """The payer's decision on one line (or on a claim without service lines).

    - CLP02 = 4 (denied) denies every line, whatever the amounts say;
    - paid with only routine adjustments (contractual CO-45, sequestration, the patient's
      share) → PAID; paid with any other adjustment (e.g. CO-97 bundling) → PARTIAL;
    - nothing paid: when all of it went to the patient (deductible) the payer decided and
      owes nothing — PAID in the denial sense (not a refusal); any other reason → DENIED.
    """
    if claim.status_code == CLAIM_DENIED:
        return Outcome.DENIED
    refused = any(not a.routine and a.amount_cents > 0 for a in adjustments)
    if paid_cents > 0:
        return Outcome.PARTIAL if refused else Outcome.PAID
    if adjustments and not refused:
        return Outcome.PAID
    return Outcome.DENIED


def outcome_records(remittance: Remittance) -> list[dict[str, Any]]:
    """What the 835 says, one JSON-ready record per service line (or per claim paid at claim
    level): the offline `validate --kind remittance` output."""
    records: list[dict[str, Any]] = []
    for claim in remittance.claims:
        base = {"claim_id": claim.claim_id, "payer_raw": claim.payer_raw,
                "claim_status": claim.status_code,
                "payer_claim_number": claim.payer_claim_number,
                "decided_date": claim.decided_date.isoformat() if claim.decided_date else None}
        lines: list[tuple[Any, ...]] = [
            (s.cpt, s.modifiers, s.service_date, s.billed_cents, s.paid_cents, s.allowed_cents,
             s.adjustments, s.rarc_codes) for s in claim.services] or [
            (None, (), None, claim.billed_cents, claim.paid_cents, None, claim.adjustments,
             claim.rarc_codes)]
        for cpt, mods, day, billed, paid, allowed, adjustments, rarcs in lines:
            records.append({**base, "cpt": cpt, "modifiers": list(mods),
                            "service_date": day.isoformat() if day else None,
                            "outcome": service_outcome(claim, paid, adjustments).value,
                            "billed_cents": billed, "paid_cents": paid,
                            "allowed_cents": allowed,
                            "carc_codes": list(dict.fromkeys(a.code for a in adjustments)),
                            "rarc_codes": list(rarcs)})
    return records
