"""Reading a delimited text file of unknown origin as a stream of rows.

Works on any binary stream (a local file, a Cloud Storage reader) and holds only a small
sniffing sample plus one row in memory, so memory stays flat however large the file is.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

SNIFF_BYTES = 64 * 1024
# Rows longer than this are a broken quote swallowing the file, not data.
MAX_FIELD_BYTES = 1024 * 1024
HEADER_SEARCH_ROWS = 20
DELIMITERS = (",", ";", "\t", "|")

_MAGIC = {
    b"PK\x03\x04": "a ZIP archive or Excel workbook (.xlsx): export it as CSV",
    b"\xd0\xcf\x11\xe0": "an Excel 97-2003 workbook (.xls): export it as CSV",
    b"%PDF": "a PDF document, not a CSV export",
    b"\x1f\x8b": "a gzip archive: upload the CSV inside it",
    b"\x89PNG": "a PNG image, not a CSV export",
    b"\xff\xd8\xff": "a JPEG image, not a CSV export",
}


HeaderTest = Callable[[list[str]], bool]


class UnreadableFile(ValueError):
    """The whole file cannot be used; `reason` is a stable key, the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _latin1_fallback(error: UnicodeError) -> tuple[str, int]:
    """Exports that are UTF-8 almost everywhere but carry a stray Windows-1252 byte (a name
    typed on another workstation) decode that byte as Latin-1 instead of failing the file."""
    assert isinstance(error, UnicodeDecodeError)
    bad = error.object[error.start : error.end]
    return bytes(bad).decode("latin-1"), error.end


codecs.register_error("upstream-latin1", _latin1_fallback)


class _Prefixed(io.RawIOBase):
    """A binary stream with the already-read sniffing sample put back in front."""

    def __init__(self, prefix: bytes, rest: BinaryIO) -> None:
        self._prefix = memoryview(prefix)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _sniff_encoding(sample: bytes) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        # final=False: the sample may end in the middle of a multi-byte character.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        return "cp1252"


def _sniff_delimiter(first_lines: list[str]) -> str:
    """The delimiter that splits the header most and the next lines most consistently."""
    best, best_score = ",", 0
    for delim in DELIMITERS:
        counts = [len(cells) for cells in csv.reader(first_lines, delimiter=delim) if cells]
        widest = max(counts, default=0)
        if widest < 2:
            continue
        # A title line above the header may not split; the widest consistent split wins.
        score = widest * 10 + sum(1 for c in counts if c == widest)
        if score > best_score:
            best, best_score = delim, score
    return best


@dataclass(slots=True)
class Row:
    line: int  # 1-based physical line where the record starts
    cells: list[str]


@dataclass(slots=True)
class Table:
    encoding: str
    delimiter: str
    header: list[str]
    header_line: int
    rows: Iterator[Row]


def open_table(stream: BinaryIO, is_header: HeaderTest) -> Table:
    """Sniff encoding and delimiter, find the header row, and return the remaining rows lazily.

    `is_header` decides whether a row is the header (exports often start with a title or a
    date-range line); the first of the first 20 rows it accepts is taken.
    """
    sample = stream.read(SNIFF_BYTES)
    if not sample or not sample.strip(b"\r\n\t ,;|\xef\xbb\xbf"):
        raise UnreadableFile("empty_file", "the file is empty")
    for magic, what in _MAGIC.items():
        if sample.startswith(magic):
            raise UnreadableFile("not_csv", f"the file is {what}")
    encoding = _sniff_encoding(sample)
    if encoding != "utf-16" and b"\x00" in sample:
        raise UnreadableFile("binary_file", "the file holds binary data, not delimited text")
    # A byte Windows-1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) is Latin-1 text, not
    # a reason to refuse the file: both single-byte encodings decode it, as Latin-1.
    errors = "upstream-latin1" if encoding.startswith("utf-8") or encoding == "cp1252" \
        else "strict"
    text = io.TextIOWrapper(io.BufferedReader(_Prefixed(sample, stream)), encoding=encoding,
                            errors=errors, newline="")
    head = sample.decode(encoding if encoding != "utf-8-sig" else "utf-8", errors="ignore")
    delimiter = _sniff_delimiter(head.lstrip("\ufeff").splitlines()[:10])
    csv.field_size_limit(MAX_FIELD_BYTES)
    reader = csv.reader(text, delimiter=delimiter)
    rows = _rows(reader)
    try:
        for _ in range(HEADER_SEARCH_ROWS):
            row = next(rows)
            cells = [c.lstrip("\ufeff") for c in row.cells]
            if is_header(cells):
                return Table(encoding, delimiter, [c.strip() for c in cells], row.line, rows)
    except StopIteration:
        pass
    except (csv.Error, UnicodeDecodeError) as exc:
        raise UnreadableFile("malformed_csv", f"the file cannot be read as CSV: {exc}") from None
    raise UnreadableFile(
        "no_header",
        "no header row with the required columns was found in the first "
        f"{HEADER_SEARCH_ROWS} rows",
    )


def _rows(reader: Iterator[list[str]]) -> Iterator[Row]:
    last_line = 0
    for cells in reader:
        line_num: int = reader.line_num  # type: ignore[attr-defined]
        start, last_line = last_line + 1, line_num
        if not any(cell.strip() for cell in cells):
            continue
        yield Row(start, cells)
