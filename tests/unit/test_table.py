import io
import tracemalloc
from collections.abc import Iterator

import pytest

from upstream.domain.headers import map_columns
from upstream.domain.records import RecordKind
from upstream.domain.table import UnreadableFile, open_table


def is_claims_header(cells: list[str]) -> bool:
    return not map_columns(cells, RecordKind.CLAIMS).missing_required()


HEADER = "Claim ID,Payer,CPT,DOS\r\n"


def table(data: bytes):  # type: ignore[no-untyped-def]
    return open_table(io.BytesIO(data), is_claims_header)


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "empty_file"), (b"\r\n\r\n", "empty_file"), (b"\xef\xbb\xbf", "empty_file"),
    (b"PK\x03\x04" + b"\x00" * 100, "not_csv"), (b"%PDF-1.7\n", "not_csv"),
    (bytes(range(256)) * 10, "binary_file"),
    (b"just,some,words\nno,header,here\n", "no_header"),
])
def test_unreadable_files_get_one_clear_reason(data: bytes, reason: str) -> None:
    with pytest.raises(UnreadableFile) as exc:
        table(data)
    assert exc.value.reason == reason
    assert str(exc.value)


def test_header_only_file_has_no_rows() -> None:
    t = table(HEADER.encode())
    assert t.header == ["Claim ID", "Payer", "CPT", "DOS"]
    assert list(t.rows) == []


def test_bom_and_latin1_and_stray_cp1252_bytes() -> None:
    bom = table(b"\xef\xbb\xbf" + HEADER.encode() + b"C1,Aetna,97153,2024-01-02\r\n")
    assert bom.header[0] == "Claim ID" and bom.encoding == "utf-8-sig"
    latin = table(HEADER.encode() + "C1,Société Générale,97153,2024-01-02\r\n".encode("latin-1"))
    assert latin.encoding == "cp1252"
    assert next(latin.rows).cells[1] == "Société Générale"
    # Valid UTF-8 in the sniffed sample, a stray Latin-1 byte much later: decoded, not fatal.
    body = b"C1,Aetna,97153,2024-01-02\r\n" * 5000 + b"C2,Caf\xe9 Plan,97153,2024-01-02\r\n"
    mixed = table(HEADER.encode() + body)
    assert [r.cells[1] for r in mixed.rows][-1] == "Café Plan"


@pytest.mark.parametrize("delimiter", [";", "\t", "|", ","])
def test_delimiters_are_sniffed(delimiter: str) -> None:
    text = HEADER.replace(",", delimiter) + delimiter.join(["C1", '"Aetna, Inc."', "97153",
                                                             "01/02/2024"]) + "\r\n"
    t = table(text.encode())
    assert t.delimiter == delimiter
    assert next(t.rows).cells == ["C1", "Aetna, Inc.", "97153", "01/02/2024"]


def test_quoted_newlines_keep_the_starting_line_number() -> None:
    data = (HEADER + 'C1,"Aetna\nSecond line",97153,2024-01-02\r\nC2,UHC,97153,2024-01-03\r\n')
    rows = list(table(data.encode()).rows)
    assert [(r.line, r.cells[0]) for r in rows] == [(2, "C1"), (4, "C2")]
    assert rows[0].cells[1] == "Aetna\nSecond line"


def test_preamble_lines_before_the_header_are_skipped() -> None:
    data = "Claims report\r\nPrinted 2024-05-01,by billing\r\n\r\n" + HEADER + \
        "C1,UHC,97153,2024-01-02\r\n"
    t = table(data.encode())
    assert t.header_line == 4
    assert next(t.rows).line == 5


def _huge_stream(total_bytes: int) -> Iterator[bytes]:
    row = b"CLM%07d,United Healthcare,97153-HN,01/02/2024,$1,234.50\r\n"
    yield b"Claim ID,Payer,CPT,DOS,Note\r\n"
    sent, i = 0, 0
    chunk: list[bytes] = []
    while sent < total_bytes:
        line = row % i
        chunk.append(line)
        sent += len(line)
        i += 1
        if len(chunk) == 2000:
            yield b"".join(chunk)
            chunk = []
    yield b"".join(chunk)


class _GeneratorStream(io.RawIOBase):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._buffer = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._buffer))
        buffer[:n], self._buffer = self._buffer[:n], self._buffer[n:]
        return n


def test_a_200_mb_file_streams_in_flat_memory() -> None:
    """The reader never holds the file: peak traced memory stays a few MB for 200 MB."""
    size = 200 * 1024 * 1024
    tracemalloc.start()
    try:
        t = open_table(io.BufferedReader(_GeneratorStream(_huge_stream(size))), is_claims_header)
        rows = sum(1 for _ in t.rows)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rows > 3_000_000
    assert peak < 16 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.0f} MB file"


def test_latin1_bytes_that_windows_1252_leaves_undefined_are_read_not_refused() -> None:
    data = ("Claim ID,Payer,CPT,DOS\r\nC1,Caf\xe9 \x81\x8d\x8f\x90\x9d Health,97153,2024-01-02\r\n"
            ).encode("latin-1")
    table = open_table(io.BytesIO(data), lambda cells: True)
    (row,) = list(table.rows)
    assert row.cells[1] == "Café \x81\x8d\x8f\x90\x9d Health"
