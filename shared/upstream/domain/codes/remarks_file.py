"""A practice's own copy of the full remark-code (RARC) list.

X12 licenses the RARC list, so Upstream ships texts only for the remarks it meets. A practice
that holds the list exports it as a CSV (`code,description`, header row, UTF-8) and points
`UPSTREAM_REMARK_CODES` at it. The file is the practice's input like any upload: a row that is
not a remark code, or a text that is empty or absurdly long, is refused with its line number
rather than shown to staff.
"""

from __future__ import annotations

import csv
import io
import re

RARC_CODE = re.compile(r"^(?:M|MA|N)\d{1,3}$", re.ASCII)
MAX_TEXT = 2000  # the longest X12 remark text is about 1,100 characters
MAX_ROWS = 5000  # X12 has published about 1,500 remarks since 1998


class RemarksFileError(ValueError):
    """The file cannot be used; the message names the line."""


def read_remarks(text: str) -> dict[str, str]:
    """`code → description` of a licensed RARC list export."""
    rows = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = [cell.strip().lower() for cell in next(rows, [])]
    if header[:2] != ["code", "description"]:
        raise RemarksFileError("line 1: the header must be code,description")
    remarks: dict[str, str] = {}
    for line_no, row in enumerate(rows, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) < 2:
            raise RemarksFileError(f"line {line_no}: expected code,description")
        code, description = row[0].strip().upper(), " ".join(row[1].split())
        if not RARC_CODE.match(code):
            raise RemarksFileError(f"line {line_no}: {code[:20]!r} is not a remark code")
        if not description or len(description) > MAX_TEXT:
            raise RemarksFileError(f"line {line_no}: the description is empty or too long")
        remarks[code] = description
        if len(remarks) > MAX_ROWS:
            raise RemarksFileError(f"more than {MAX_ROWS} remark codes")
    return remarks
