"""Parsers for the cell values found in real EHR and practice-management exports.

Each parser takes the raw cell text and returns a clean value, or raises `InvalidValue`
with a machine-readable reason that ends up in the rejects file and the upload summary.
Blank cells are `None`, never an error: whether a field is required is the row's business.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from upstream.domain.records import Outcome


class InvalidValue(ValueError):
    """A cell that cannot be used; `reason` is a stable key (e.g. `invalid_date`)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def clean(cell: str | None) -> str | None:
    """Strip whitespace (including the non-breaking spaces spreadsheets love); blank → None."""
    if cell is None:
        return None
    text = cell.replace("\u00a0", " ").strip()
    return text or None


# Excel's day zero is 1899-12-30 (it counts the non-existent 1900-02-29). Serials between
# 20000 (1954-10-03) and 80000 (2119-01-10) cover every plausible service date; outside that
# range a bare number is more likely an id than a date.
_EXCEL_EPOCH = date(1899, 12, 30)
_EXCEL_SERIAL_RANGE = (20000, 80000)
# Codes, dates and amounts are ASCII: `\d` in a str pattern would also take other scripts'
# digits (`٩٧١٥٣`), which `int()` then reads as a number nobody typed.
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ].*)?$", re.ASCII)
_US = re.compile(r"^(\d{1,2})[/\-.](\d{1,2})[/\-.](\d{2}|\d{4})(?:\s.*)?$", re.ASCII)
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$", re.ASCII)
_SERIAL = re.compile(r"^\d{5}(?:\.\d+)?$", re.ASCII)
# Two-digit years: 00–69 → 2000s, 70–99 → 1900s (the POSIX strptime %y pivot).
_TWO_DIGIT_PIVOT = 70


def as_day(value: object) -> date | None:
    """A stored day (a `date`, or ISO text as documents and messages carry it), else None."""
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def parse_date(cell: str | None) -> date | None:
    """ISO `YYYY-MM-DD` (time part ignored), US `MM/DD/YYYY` and `M/D/YY`, X12 `YYYYMMDD`,
    and Excel serial numbers."""
    text = clean(cell)
    if text is None:
        return None
    try:
        if m := _ISO.match(text):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if m := _US.match(text):
            year = int(m[3])
            if len(m[3]) == 2:
                year += 2000 if year < _TWO_DIGIT_PIVOT else 1900
            return date(year, int(m[1]), int(m[2]))
        if m := _COMPACT.match(text):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if _SERIAL.match(text):
            serial = int(float(text))
            if _EXCEL_SERIAL_RANGE[0] <= serial <= _EXCEL_SERIAL_RANGE[1]:
                return _EXCEL_EPOCH + timedelta(days=serial)
    except (ValueError, OverflowError) as exc:  # e.g. month 13, or a serial of 400 digits
        raise InvalidValue("invalid_date", f"{text!r}: {exc}") from None
    raise InvalidValue("invalid_date", f"{text!r} is not a recognised date")


_MONEY_NOISE = re.compile(r"[\s$,]|USD", re.IGNORECASE)
_CENT = Decimal("0.01")


def parse_money(cell: str | None) -> int | None:
    """`1234.5`, `$1,234.50`, `(12.00)` (accounting negative), `-12`, `12-` → integer cents.

    Sub-cent values round half-up to the cent, the rounding payers' remittances use.
    """
    text = clean(cell)
    if text is None:
        return None
    negative = False
    body = _MONEY_NOISE.sub("", text)
    if body.startswith("(") and body.endswith(")"):
        negative, body = True, body[1:-1]
    if body.endswith("-"):
        negative, body = True, body[:-1]
    if body.startswith("-"):
        negative, body = not negative, body[1:]
    if not body or not re.fullmatch(r"\d*\.?\d*", body) or body == ".":
        raise InvalidValue("invalid_money", f"{text!r} is not an amount")
    try:
        amount = Decimal(body).quantize(_CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise InvalidValue("invalid_money", f"{text!r} is not an amount") from None
    cents = int(amount * 100)
    return -cents if negative else cents


_CPT = re.compile(r"^(?:\d{4}[0-9FTU]|[A-V]\d{4})$", re.ASCII)
_MODIFIER = re.compile(r"^[0-9A-Z]{2}$")
_SPREADSHEET_FLOAT = re.compile(r"^(\d+)\.0+$", re.ASCII)


def parse_procedure(cell: str | None) -> tuple[str, tuple[str, ...]] | None:
    """CPT (5 digits, Category II `dddd F`, III `dddd T`) or HCPCS Level II (`A0000`), with
    any modifiers glued on (`97153-HN`, `97153 HN 59`, `97153:GP`).

    Spreadsheets turn `00100` into `100` and `97153` into `97153.0`; numeric codes of three or
    four digits get their leading zeros back (anesthesia codes 00100–01999 are real).
    """
    text = clean(cell)
    if text is None:
        return None
    text = text.upper()
    if m := _SPREADSHEET_FLOAT.match(text):
        text = m[1]
    parts = [p for p in re.split(r"[\s\-:,/]+", text) if p]
    if not parts:  # only separators, e.g. "/" or "-"
        raise InvalidValue("invalid_cpt", f"{text!r} holds no procedure code")
    code, mods = parts[0], parts[1:]
    if len(code) <= 4 and code.isascii() and code.isdigit() and 100 <= int(code) <= 1999:
        code = code.zfill(5)
    # A modifier glued without a separator: 97153HN
    if not _CPT.match(code) and len(code) in (7, 9) and _CPT.match(code[:5]):
        mods = [code[i : i + 2] for i in range(5, len(code), 2)] + mods
        code = code[:5]
    if not _CPT.match(code):
        raise InvalidValue("invalid_cpt", f"{cell!r} is not a CPT/HCPCS code")
    for mod in mods:
        if not _MODIFIER.match(mod):
            raise InvalidValue("invalid_modifier", f"{mod!r} in {cell!r} is not a modifier")
    return code, tuple(mods)


def parse_modifiers(cell: str | None) -> tuple[str, ...]:
    text = clean(cell)
    if text is None:
        return ()
    mods = tuple(m for m in re.split(r"[\s,;:|/\-]+", text.upper()) if m)
    for mod in mods:
        if not _MODIFIER.match(mod):
            raise InvalidValue("invalid_modifier", f"{mod!r} is not a modifier")
    return mods


_OUTCOMES: dict[str, Outcome] = {
    **dict.fromkeys(["paid", "paid in full", "closed", "closed paid", "complete", "approved",
                     "accepted", "finalized", "settled", "p"], Outcome.PAID),
    **dict.fromkeys(["partial", "partially paid", "partial payment", "partial paid",
                     "short paid", "underpaid"], Outcome.PARTIAL),
    # Clearinghouse and payer front-end rejections are counted as denials: the line was
    # refused and the practice must act on it, which is what denial drift is about.
    **dict.fromkeys(["denied", "denial", "rejected", "reject", "closed denied", "d",
                     "not paid", "zero pay", "zero paid"], Outcome.DENIED),
    **dict.fromkeys(["pending", "submitted", "open", "in process", "processing", "billed",
                     "sent", "in progress", "awaiting payment", "appealed", "appeal",
                     "resubmitted", "on hold", "hold", "new", "created", "acknowledged",
                     "received"], Outcome.PENDING),
    **dict.fromkeys(["void", "voided", "cancelled", "canceled", "deleted", "entered in error",
                     "reversed"], Outcome.VOID),
}


def parse_outcome(cell: str | None) -> Outcome | None:
    text = clean(cell)
    if text is None:
        return None
    key = re.sub(r"[\s_\-]+", " ", text.lower()).strip(" .")
    if key in _OUTCOMES:
        return _OUTCOMES[key]
    if key.upper() in Outcome.__members__:
        return Outcome[key.upper()]
    raise InvalidValue("invalid_outcome", f"{text!r} is not a known claim status")


def infer_outcome(*, paid_cents: int | None, billed_cents: int | None,
                  allowed_cents: int | None, decided: bool, has_denial_codes: bool) -> Outcome:
    """Outcome for exports without a status column: the money and codes tell it."""
    if paid_cents is not None and paid_cents > 0:
        expected = allowed_cents if allowed_cents is not None else billed_cents
        if has_denial_codes and expected is not None and paid_cents < expected:
            return Outcome.PARTIAL
        return Outcome.PAID
    if decided or has_denial_codes:
        return Outcome.DENIED
    return Outcome.PENDING


_GROUP_JOIN = re.compile(r"\b(CO|PR|OA|PI|CR)[\s\-]+(?=[A-Z]?\d)", re.ASCII)
# CARCs are 1–3 digits, or one of the lettered series X12 publishes (A0–A8, B1–B23, D…, P1–P31,
# W1–W9, Y1–Y3); group codes say who owes it. M, MA and N begin remark codes (RARCs), which
# staff often type into the same "Adj Codes" column ("CO-16; N290").
_CARC = re.compile(r"^(?:(CO|PR|OA|PI|CR)-?)?([ABDPWY]?\d{1,3})$", re.ASCII)
_RARC = re.compile(r"^(?:M|MA|N)\d{1,3}$", re.ASCII)


def parse_carc_list(cell: str | None) -> tuple[str, ...]:
    """`CO-97`, `CO97`, `co 45`, `97`, `CO-45, PR-1` → `("CO-45", "PR-1")`.

    A code without a group keeps its bare number: the group (who owes it) is not ours to guess.
    A remark code (RARC) here is refused: use `split_adjustment_codes` for a mixed column.
    """
    carcs, rarcs = split_adjustment_codes(cell)
    if rarcs:
        raise InvalidValue("invalid_carc", f"{rarcs[0]!r} is a remark code (RARC), not a claim "
                                           "adjustment reason code")
    return carcs


def split_adjustment_codes(cell: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(CARCs, RARCs) of a column that may hold both, as remittance viewers print them:
    `CO-16; N290` → `(("CO-16",), ("N290",))`. A token that is neither is refused."""
    text = clean(cell)
    if text is None:
        return (), ()
    carcs: list[str] = []
    rarcs: list[str] = []
    for token in re.split(r"[,;|/\s]+", _GROUP_JOIN.sub(r"\1-", text.upper())):
        if not token:
            continue
        if _RARC.match(token):
            rarcs.append(token)
            continue
        m = _CARC.match(token)
        if not m:
            raise InvalidValue("invalid_carc", f"{token!r} is not a claim adjustment reason code")
        carcs.append(f"{m[1]}-{m[2]}" if m[1] else m[2])
    return tuple(dict.fromkeys(carcs)), tuple(dict.fromkeys(rarcs))


def parse_rarc_list(cell: str | None) -> tuple[str, ...]:
    text = clean(cell)
    if text is None:
        return ()
    codes = [t for t in re.split(r"[,;|/\s]+", text.upper()) if t]
    for code in codes:
        if not _RARC.match(code):
            raise InvalidValue("invalid_rarc", f"{code!r} is not a remittance advice remark code")
    return tuple(dict.fromkeys(codes))


_ICD10 = re.compile(r"^[A-Z]\d[0-9A-Z](?:[0-9A-Z]{1,4})?$", re.ASCII)


def parse_diagnosis_list(cell: str | None) -> tuple[str, ...]:
    """ICD-10-CM codes, dots optional (`F84.0` → `F840`, the form claims carry)."""
    text = clean(cell)
    if text is None:
        return ()
    codes = [t.replace(".", "") for t in re.split(r"[,;|\s]+", text.upper()) if t]
    for code in codes:
        if not _ICD10.match(code):
            raise InvalidValue("invalid_diagnosis", f"{code!r} is not an ICD-10 code")
    return tuple(dict.fromkeys(codes))


def parse_number(cell: str | None, reason: str = "invalid_number") -> float | None:
    text = clean(cell)
    if text is None:
        return None
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        raise InvalidValue(reason, f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")) or value < 0:
        raise InvalidValue(reason, f"{text!r} is not a non-negative number")
    return value


def parse_int(cell: str | None, reason: str = "invalid_number") -> int | None:
    value = parse_number(cell, reason)
    if value is None:
        return None
    if value != int(value):
        raise InvalidValue(reason, f"{cell!r} is not a whole number")
    return int(value)


def parse_line_number(cell: str | None) -> int | None:
    value = parse_int(cell, "invalid_line")
    if value is not None and value < 1:
        raise InvalidValue("invalid_line", f"{cell!r}: line numbers start at 1")
    return value


def parse_identifier(cell: str | None) -> str | None:
    """Claim numbers, NPIs, auth numbers: spreadsheets append `.0` to numeric ids."""
    text = clean(cell)
    if text is None:
        return None
    if m := _SPREADSHEET_FLOAT.match(text):
        return m[1]
    return text


def parse_npi(cell: str | None) -> str | None:
    text = parse_identifier(cell)
    if text is None:
        return None
    if not re.fullmatch(r"\d{10}", text):
        raise InvalidValue("invalid_npi", f"{text!r} is not a 10-digit NPI")
    return text


def parse_code_list(cell: str | None) -> tuple[str, ...]:
    """A list of CPT/HCPCS codes (authorizations), modifiers dropped."""
    text = clean(cell)
    if text is None:
        return ()
    codes = []
    for token in re.split(r"[,;|\s]+", text):
        if token:
            parsed = parse_procedure(token)
            if parsed:
                codes.append(parsed[0])
    return tuple(dict.fromkeys(codes))


_DECISIONS = {
    "approved": "approved", "approve": "approved", "a": "approved", "yes": "approved",
    "authorized": "approved", "certified": "approved", "approved in full": "approved",
    "partial": "partial", "partially approved": "partial", "partial approval": "partial",
    "modified": "partial", "reduced": "partial", "approved modified": "partial",
    "denied": "denied", "deny": "denied", "d": "denied", "no": "denied", "rejected": "denied",
    "not certified": "denied", "non certified": "denied",
    "pending": "pending", "in review": "pending", "submitted": "pending", "p": "pending",
}


def parse_decision(cell: str | None) -> str | None:
    """A payer's answer to an authorization request, in the words exports use."""
    text = clean(cell)
    if text is None:
        return None
    key = " ".join(re.findall(r"[a-z]+", text.lower()))
    if key not in _DECISIONS:
        raise InvalidValue("invalid_decision", f"{text[:40]!r} is not an authorization decision "
                                               "(approved, partial, denied, pending)")
    return _DECISIONS[key]
