"""FHIR JSON or NDJSON as it arrives in a file or a message → resources, one bad line costing
only itself (what `upstream map-fhir` and the mapper read before mapping)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from upstream.domain import safe_json


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A document or NDJSON line that is not JSON we accept (not UTF-8, not JSON, nested
    too deep, a number too long): reported with its line, never fatal to the others."""

    line: int | None
    reason: str
    detail: str


def iter_resources(raw: bytes) -> Iterator[Any]:
    """A JSON document or NDJSON lines (UTF-8, a BOM allowed) → resources; what cannot be
    read is yielded as `Unreadable`, line by line, so one bad line costs only itself."""
    raw = raw.removeprefix(b"\xef\xbb\xbf").strip()
    if not raw:
        return
    try:
        yield safe_json.loads(raw)
        return
    except safe_json.UnsafeJson as whole:
        if b"\n" not in raw:
            yield Unreadable(None, whole.reason, whole.detail)
            return
    for number, line in enumerate(raw.splitlines(), start=1):
        if line.strip():
            try:
                yield safe_json.loads(line)
            except safe_json.UnsafeJson as exc:
                yield Unreadable(number, exc.reason, exc.detail)
