"""A practice's fee schedule: what each payer contracted to allow per unit of each code.

Kept as settings (`fee_schedule`: rows of payer, code, cents per unit), typed or pasted as
CSV with a header `payer,cpt,rate` (dollars per unit), as billing managers keep it in a
spreadsheet. Payer names go through the practice's payer normaliser when the detectors read
them, so `UHC` in the schedule is the `UnitedHealthcare` of the claims.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from upstream.domain.payers import PayerNormalizer

MAX_ROWS = 2000
CODE = re.compile(r"^[0-9A-Z]{5}$")
COLUMNS = ("payer", "cpt", "rate")


class FeeScheduleError(ValueError):
    """The message names the line."""


def parse_fee_schedule(text: str) -> list[dict[str, Any]]:
    """CSV `payer,cpt,rate` → rows `{"payer", "cpt", "cents_per_unit"}`."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = [cell.strip().lower() for cell in next(reader, [])]
    if header[:3] != list(COLUMNS):
        raise FeeScheduleError("line 1: the header must be payer,cpt,rate")
    rows: list[dict[str, Any]] = []
    for number, cells in enumerate(reader, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) < 3:
            raise FeeScheduleError(f"line {number}: payer, cpt, rate")
        payer, code, rate = (cell.strip() for cell in cells[:3])
        code = code.upper().removesuffix(".0")
        if not payer or len(payer) > 100 or payer[0] in "=+-@":
            raise FeeScheduleError(f"line {number}: a payer name (at most 100 characters)")
        if not CODE.match(code):
            raise FeeScheduleError(f"line {number}: {code[:12]!r} is not a CPT/HCPCS code")
        rows.append({"payer": payer, "cpt": code, "cents_per_unit": _cents(number, rate)})
        if len(rows) > MAX_ROWS:
            raise FeeScheduleError(f"more than {MAX_ROWS} rows")
    return rows


def _cents(number: int, text: str) -> int:
    try:
        value = Decimal(text.lstrip("$").replace(",", ""))
    except InvalidOperation:
        raise FeeScheduleError(f"line {number}: the rate is dollars a unit, like 18.50") from None
    if not value.is_finite() or not 0 < value <= 1_000_000:
        raise FeeScheduleError(f"line {number}: the rate is dollars a unit, like 18.50")
    return int((value * 100).to_integral_value())


def canonical_rows(rows: Iterable[Mapping[str, Any]],
                   aliases: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The rows with each payer named as the claims name it."""
    normalizer = PayerNormalizer(aliases)
    return [{**row, "payer": normalizer.canonical(str(row.get("payer", "")))} for row in rows
            if isinstance(row, Mapping)]
