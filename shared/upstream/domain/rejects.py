"""The rejects file: each unusable row with its line number and reason, safe to open in Excel.

Cells starting with `=`, `+`, `-`, `@`, tab or carriage return are formulas to a spreadsheet
(CSV injection, OWASP); they are prefixed with a single quote so they display as text.
"""

from __future__ import annotations

import csv
from typing import TextIO

from upstream.domain.ingest import Rejected

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralize(cell: str) -> str:
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


class RejectsWriter:
    def __init__(self, out: TextIO, header: list[str]) -> None:
        self._writer = csv.writer(out, lineterminator="\r\n")
        self._writer.writerow([neutralize(c) for c in ["line", "reason", "detail", *header]])
        self.count = 0

    def write(self, rejected: Rejected) -> None:
        line = str(rejected.line) if rejected.line > 0 else ""
        self._writer.writerow([neutralize(c) for c in
                               [line, rejected.reason, rejected.detail, *rejected.cells]])
        self.count += 1
