"""The claim-line and authorization records (DESIGN Contract 1).

Money is held as integer cents (`*_cents`) everywhere: in memory, in Firestore and in JSON.
Integer cents are exact, sum correctly in Firestore aggregations, and are one of the two
representations Contract 5 allows for exported records.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

# A cell starting with one of these is a formula to a spreadsheet (CSV injection, OWASP):
# `=HYPERLINK(...)`, `@SUM(...)`, `+cmd|...`, `-2+3+cmd|...`, and after a tab or a carriage
# return. Stored, such text reaches every export of the data, so it is refused at the record
# (every ingest path builds one) rather than only neutralised in the rejects file.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def refuse_formula(text: str) -> str:
    if text.lstrip(" \u00a0").startswith(FORMULA_START) or text.startswith(FORMULA_START):
        raise ValueError("looks like a spreadsheet formula (starts with = + - @ or a tab)")
    return text


# Names and labels: payers, plans, credentials, service types. Never start with a sign.
Text = Annotated[str, AfterValidator(refuse_formula)]


def refuse_formula_id(text: str) -> str:
    """Identifiers may be negative-looking numbers (`-1042`) in some exports; a sign followed
    by anything but digits is a formula."""
    if text.startswith(("=", "@", "\t", "\r")) or (
            text.startswith(("+", "-")) and not text[1:].isdigit()):
        raise ValueError("looks like a spreadsheet formula (starts with = + - @ or a tab)")
    return text


Identifier = Annotated[str, AfterValidator(refuse_formula_id)]


class Outcome(StrEnum):
    PENDING = "PENDING"
    PAID = "PAID"
    PARTIAL = "PARTIAL"
    DENIED = "DENIED"
    VOID = "VOID"


class Source(StrEnum):
    CSV = "csv"
    FHIR = "fhir"
    REMIT_835 = "835"


class RecordKind(StrEnum):
    """What an uploaded file holds; also the folder name under `uploads/<customer>/`."""

    CLAIMS = "claims"
    AUTHORIZATIONS = "authorizations"
    REMITTANCE = "remittance"


def _stable_hash(*parts: str) -> str:
    """Document ids are hashes, not the business keys: hashed ids spread writes across
    Firestore's key range (sequential ids cap a collection near 500 writes/s) and keep
    free-text claim numbers (which may contain '/') out of document paths."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)

    def content_hash(self) -> str:
        """Hash of everything but `updated_at`: equal hashes mean nothing changed, which is
        how consumers of claim-change messages recognise a redelivery."""
        return document_hash(self.to_document())

    def to_document(self) -> dict[str, Any]:
        """The Firestore/JSON shape: dates as ISO strings, enums as their values."""
        return self.model_dump(mode="json")


class ClaimLine(_Record):
    """One service line of a claim; a claim with three lines is three records."""

    customer_id: str
    claim_id: Identifier = Field(min_length=1)
    line: int = Field(default=1, ge=1)
    patient_key: str | None = None
    payer: Text = Field(min_length=1)
    payer_raw: Text
    plan_type: Text | None = None
    cpt: str
    modifiers: tuple[str, ...] = ()
    units: float | None = None
    diagnosis_codes: tuple[str, ...] = ()
    service_date: date | None = None
    submitted_date: date | None = None
    decided_date: date | None = None
    outcome: Outcome = Outcome.PENDING
    billed_cents: int | None = None
    allowed_cents: int | None = None
    paid_cents: int | None = None
    carc_codes: tuple[str, ...] = ()
    rarc_codes: tuple[str, ...] = ()
    authorization_number: Identifier | None = None
    provider_npi: str | None = None
    provider_credential: Text | None = None
    minutes: int | None = None
    place_of_service: str | None = None
    source: Source = Source.CSV
    updated_at: datetime
    # The line's identity within its claim. `L<n>` when the source numbers its lines
    # (FHIR item.sequence, an export's line column); otherwise what the line is
    # (`cpt|modifiers|service date|occurrence`), so a later export that lists the same
    # claim's lines in another order, or a corrected row uploaded alone, lands on the same
    # line instead of shifting numbers onto the wrong one.
    line_key: str = ""

    @model_validator(mode="before")
    @classmethod
    def _default_line_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("line_key"):
            data = {**data, "line_key": f"L{data.get('line', 1)}"}
        return data

    @property
    def doc_id(self) -> str:
        return claim_line_doc_id(self.claim_id, self.line_key)


def claim_line_doc_id(claim_id: str, line_key: str) -> str:
    return _stable_hash("claim", claim_id, line_key)


class Decision(StrEnum):
    APPROVED = "approved"
    PARTIAL = "partial"  # approved with fewer units (or a shorter period) than requested
    DENIED = "denied"
    PENDING = "pending"


class Authorization(_Record):
    """A prior authorization: what the payer approved, for whom, until when, how many units."""

    customer_id: str
    authorization_number: Identifier = Field(min_length=1)
    patient_key: str | None = None
    payer: Text = Field(min_length=1)
    payer_raw: Text
    service_type: Text | None = None
    cpt_codes: tuple[str, ...] = ()
    start_date: date
    end_date: date
    units_authorized: float | None = None
    units_used: float | None = None
    # The request and the payer's answer, where the export carries them (the approval model
    # learns from them, `specialty/auth_approval.py`).
    units_requested: float | None = None
    decision: Decision | None = None
    decision_date: date | None = None
    source: Source = Source.CSV
    updated_at: datetime

    @property
    def doc_id(self) -> str:
        return authorization_doc_id(self.authorization_number)


def authorization_doc_id(authorization_number: str) -> str:
    return _stable_hash("auth", authorization_number)


AnyRecord = ClaimLine | Authorization


def document_hash(document: dict[str, Any]) -> str:
    payload = {k: v for k, v in document.items() if k not in ("updated_at", "content_hash")}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def stored_document(record: AnyRecord) -> tuple[str, dict[str, Any]]:
    """(document id, Firestore document with its `content_hash`): serialised once, shared by
    the write and the change message (serialising dominates ingest CPU)."""
    document = record.to_document()
    document["content_hash"] = document_hash(document)
    return record.doc_id, document
