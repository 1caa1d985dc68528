"""JSON from outside, parsed so that no input can raise anything but `UnsafeJson`.

Python's `json.loads` has three ways to fail that are not `JSONDecodeError`: nesting deeper
than the interpreter's recursion limit raises `RecursionError`, an integer of more than 4,300
digits raises `ValueError` (CPython's guard against quadratic int parsing, CVE-2020-10735),
and `"\\ud800"` decodes to a lone surrogate that only fails later, when the text is encoded
for Firestore, Pub/Sub or a log line. It also accepts `NaN` and `Infinity`, which are not
JSON (RFC 8259 §6) and which Firestore and pydantic treat differently.

FHIR resources nest about 10 deep (an ExplanationOfBenefit's item → adjudication → amount);
64 leaves room for every real resource and Bundle while keeping every recursive reader below
Python's default recursion limit (1,000) with a wide margin.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64
MAX_NUMBER_CHARS = 40  # a 64-bit integer has 20 digits; a double's longest form is ~25
_SURROGATE = re.compile("[\ud800-\udfff]")


class UnsafeJson(ValueError):
    """Input that is not JSON we accept; `reason` is a stable key, `detail` safe to show."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _number(text: str) -> int | float:
    if len(text) > MAX_NUMBER_CHARS:
        raise UnsafeJson("number_too_long", f"a number of {len(text)} characters")
    return float(text) if any(c in text for c in ".eE") else int(text)


def _constant(name: str) -> Any:
    raise UnsafeJson("not_json", f"{name} is not a JSON value")


def _check_tree(value: Any, max_depth: int) -> None:
    """Depth and text checked without recursion (an explicit stack)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise UnsafeJson("invalid_text", "a string holds an unpaired surrogate")
            continue
        if not isinstance(item, dict | list):
            continue
        if depth > max_depth:
            raise UnsafeJson("too_deep", f"nested deeper than {max_depth} levels")
        if isinstance(item, dict):
            stack.extend((key, depth) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        else:
            stack.extend((child, depth + 1) for child in item)


def loads(raw: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """Parse `raw` (UTF-8 bytes or text) or raise `UnsafeJson` with a reason."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw
    except UnicodeDecodeError as exc:
        raise UnsafeJson("not_utf8", f"byte {exc.start} is not UTF-8") from None
    try:
        value = json.loads(text, parse_int=_number, parse_float=_number,
                           parse_constant=_constant)
    except RecursionError:
        raise UnsafeJson("too_deep", f"nested deeper than {max_depth} levels") from None
    except json.JSONDecodeError as exc:
        raise UnsafeJson("not_json", f"{exc.msg} at line {exc.lineno} column {exc.colno}") \
            from None
    except UnsafeJson:
        raise
    except ValueError as exc:  # anything else the decoder refuses
        raise UnsafeJson("not_json", str(exc)[:100]) from None
    _check_tree(value, max_depth)
    return value


def loads_object(raw: bytes | str, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    value = loads(raw, max_depth)
    if not isinstance(value, dict):
        raise UnsafeJson("not_an_object", "the body is not a JSON object")
    return value
