"""A claim a person pastes into the pre-submission check: our claim JSON, a FHIR Claim, or
rows of a claims export with its header line (any layout the file ingest reads).

CSV rows go through the very parser uploads use (`domain/ingest.py`), so a pasted row is read
exactly as the same row in a file would be; the patient id is hashed with a key that lives
for this one check and is thrown away (nothing is stored). All rows must belong to one claim:
the check scores a claim, and mixing two would blend their factors.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from upstream.domain import safe_json
from upstream.domain.headers import header_test
from upstream.domain.ingest import TenantContext, parse_records
from upstream.domain.patient import PatientHasher
from upstream.domain.payers import PayerNormalizer
from upstream.domain.records import ClaimLine, RecordKind
from upstream.domain.risk.check import CheckError, parse_claim
from upstream.domain.table import UnreadableFile, open_table

MAX_PASTE = 64 * 1024  # a claim of MAX_LINES lines as CSV is a few KB


def lines_from_text(text: str, aliases: Mapping[str, str] | None,
                    now: datetime) -> list[dict[str, Any]]:
    """The claim's lines in the shape `check` scores, or CheckError saying what is wrong."""
    text = (text or "").strip()
    if not text:
        raise CheckError("paste a claim: JSON, a FHIR Claim, or CSV rows with their header")
    if len(text.encode()) > MAX_PASTE:
        raise CheckError(f"that is over {MAX_PASTE // 1024} KB: paste one claim")
    payers = PayerNormalizer(dict(aliases or {}))
    if text.startswith("{"):
        try:
            return parse_claim(safe_json.loads_object(text.encode()), payers)
        except safe_json.UnsafeJson as exc:
            raise CheckError(f"not JSON we accept ({exc.detail})") from None
    return _from_rows(text, payers, now)


def _from_rows(text: str, payers: PayerNormalizer, now: datetime) -> list[dict[str, Any]]:
    ctx = TenantContext("check", PatientHasher(secrets.token_bytes(32)), payers, now)
    try:
        table = open_table(io.BytesIO(text.encode()), header_test([RecordKind.CLAIMS]))
    except UnreadableFile as exc:
        raise CheckError(f"those rows cannot be read: {exc}") from None
    report, parsed = parse_records(table, RecordKind.CLAIMS, ctx)
    lines = [r for r in parsed if isinstance(r, ClaimLine)]
    if not lines:
        reasons = ", ".join(sorted(report.summary().get("reasons", {}))) or "no claim rows"
        raise CheckError(f"no usable claim line in those rows ({reasons})")
    claims = {line.claim_id for line in lines}
    if len(claims) > 1:
        raise CheckError(f"those rows hold {len(claims)} claims: paste one claim's lines")
    documents = [line.to_document() for line in lines]
    return [{**doc, "line": doc.get("line") or index}
            for index, doc in enumerate(documents, start=1)]
