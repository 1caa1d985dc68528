"""An 835 dropped in the bucket → outcome updates on the stored claim lines.

It rides on the upload machinery of `ingest_upload` (same upload id = content hash, same lease,
same batch markers and change messages), so the same 835 twice is a duplicate, a crash midway
is redone from the first unpublished batch, and the aggregator sees each changed line once.
A line changed by an 835 keeps everything it had and takes the payer's decision: outcome, paid
and allowed amounts, CARC (with group) and RARC codes, and the payment date as
`decided_date`; `updated_at` is the upload's start, so a redelivery writes identical bytes.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, BinaryIO, cast

from pydantic import ValidationError

from upstream.domain.ingest import Rejected
from upstream.domain.records import ClaimLine, RecordKind
from upstream.domain.rejects import RejectsWriter
from upstream.domain.remit_match import Posting, plan_posting
from upstream.domain.remittance import Remittance, RemittanceUnreadable, read_835
from upstream.ports import UploadStatus

# An 835 is a few MB even for a large practice's weekly run; a file far beyond that is not one.
MAX_REMITTANCE_BYTES = 64 << 20
REPORT_HEADER = ["claim_id", "procedure"]
_LINE_FIELDS = frozenset(ClaimLine.model_fields)

WriteBatches = Callable[[Iterator[ClaimLine], RecordKind], int]


def read_remittance(stream: BinaryIO) -> Remittance:
    data = stream.read(MAX_REMITTANCE_BYTES + 1)
    if len(data) > MAX_REMITTANCE_BYTES:
        raise RemittanceUnreadable("too_large", f"over {MAX_REMITTANCE_BYTES >> 20} MiB")
    return read_835(data)


def failure_report(error: RemittanceUnreadable) -> bytes:
    """The rejects file of a refused 835: each finding with its segment number."""
    out = io.StringIO()
    writer = RejectsWriter(out, ["segment_id"])
    for problem in error.problems or ():
        writer.write(Rejected(problem.segment, error.reason, problem.reason,
                              [problem.segment_id]))
    if not error.problems:
        writer.write(Rejected(0, error.reason, str(error), [""]))
    return out.getvalue().encode()


def posting_report(posting: Posting) -> bytes:
    out = io.StringIO()
    writer = RejectsWriter(out, REPORT_HEADER)
    for rejected in posting.rejected:
        writer.write(rejected)
    return out.getvalue().encode()


def updated_lines(posting: Posting, stored: dict[str, list[tuple[str, dict[str, Any]]]],
                  updated_at: datetime) -> Iterator[ClaimLine]:
    """Stored line + the 835's fields, validated as a claim line again (a stored document
    that no longer validates is skipped rather than rewritten wrongly)."""
    by_id = {doc_id: document for lines in stored.values() for doc_id, document in lines}
    for doc_id in sorted(posting.changes):
        merged = {k: v for k, v in by_id[doc_id].items() if k in _LINE_FIELDS}
        merged.update(posting.changes[doc_id], updated_at=updated_at)
        try:
            yield ClaimLine.model_validate(merged)
        except ValidationError:
            posting.rejected.append(Rejected(0, "stored_line_invalid",
                                             "the stored line no longer validates",
                                             [str(merged.get("claim_id", "")), ""]))


def post_remittance(remittance: Remittance,
                    stored: dict[str, list[tuple[str, dict[str, Any]]]],
                    started_at: datetime, write: WriteBatches) -> tuple[Posting, int]:
    posting = plan_posting(remittance, stored)
    written = write(updated_lines(posting, stored, started_at), RecordKind.CLAIMS)
    return posting, written


def remittance_summary(remittance: Remittance, posting: Posting, written: int) -> dict[str, Any]:
    services = sum(len(c.services) for c in remittance.claims)
    return {
        "status": UploadStatus.COMPLETE.value, "kind": RecordKind.REMITTANCE.value,
        "transactions": remittance.transactions, "claims": len(remittance.claims),
        "services": services, "rows": len(remittance.claims) + len(
            [p for p in remittance.problems if p.level == "claim"]),
        "accepted": written, "stored": written, "rejected": len(posting.rejected),
        "reasons": posting.reasons(), "stale": posting.stale,
        "payers": sorted({c.payer_raw for c in remittance.claims if c.payer_raw}),
        "warnings": len(remittance.warnings),
        "warning_sample": [p.describe() for p in remittance.warnings[:10]],
    }


def failure_summary(error: RemittanceUnreadable) -> dict[str, Any]:
    return {"status": UploadStatus.FAILED.value, "kind": RecordKind.REMITTANCE.value,
            "error": error.reason, "message": str(error), "rows": 0, "accepted": 0,
            "rejected": 0, "problems": [p.describe() for p in (error.problems or ())[:20]]}


def write_report(objects: Any, bucket: str, name: str, report: bytes) -> None:
    objects.write(bucket, name, cast(BinaryIO, io.BytesIO(report)), "text/csv")
