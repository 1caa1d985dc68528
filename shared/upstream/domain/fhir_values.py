"""Small readers of FHIR values shared by the mappers: a date, and the id a reference names."""

from __future__ import annotations

from datetime import date
from typing import Any


def fhir_day(value: Any) -> date | None:
    """The calendar day of a FHIR date or dateTime; None for anything else."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def reference_id(reference: Any) -> str | None:
    """`{"reference": "Patient/123"}` → "123" (a `urn:uuid:` too); else the identifier's
    value; else None."""
    if not isinstance(reference, dict):
        return None
    ref = reference.get("reference")
    if isinstance(ref, str) and ref:
        return ref.rsplit("/", 1)[-1].removeprefix("urn:uuid:")
    identifier = reference.get("identifier")
    if isinstance(identifier, dict) and identifier.get("value"):
        return str(identifier["value"])
    return None
