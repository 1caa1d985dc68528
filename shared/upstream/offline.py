"""Offline ingestion for `upstream validate`: the same domain code the function runs, on a
local file, with no cloud. Patient ids are hashed with a key that lives only for this run
(or `UPSTREAM_PATIENT_KEY`, hex), so no raw id is ever written out."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import BinaryIO, TextIO

from upstream.domain.headers import detect_kind, header_test
from upstream.domain.ingest import IngestReport, Rejected, TenantContext, parse_records
from upstream.domain.patient import PatientHasher
from upstream.domain.payers import PayerNormalizer
from upstream.domain.records import Authorization, ClaimLine, RecordKind
from upstream.domain.rejects import RejectsWriter
from upstream.domain.table import open_table

OFFLINE_CUSTOMER = "offline"


def offline_context(customer_id: str = OFFLINE_CUSTOMER) -> TenantContext:
    key_hex = os.environ.get("UPSTREAM_PATIENT_KEY")
    key = bytes.fromhex(key_hex) if key_hex else secrets.token_bytes(32)
    return TenantContext(customer_id, PatientHasher(key), PayerNormalizer(), datetime.now(UTC))


def read_file(stream: BinaryIO, kind: RecordKind | None, ctx: TenantContext,
              rejects_out: TextIO | None = None,
              ) -> tuple[IngestReport, Iterator[ClaimLine | Authorization]]:
    """Raises `UnreadableFile` for a file that cannot be read at all."""
    kinds = [kind] if kind else [RecordKind.CLAIMS, RecordKind.AUTHORIZATIONS]
    table = open_table(stream, header_test(kinds))
    chosen = kind or detect_kind(table.header)
    report, parsed = parse_records(table, chosen, ctx)
    writer = RejectsWriter(rejects_out, table.header) if rejects_out else None

    def records() -> Iterator[ClaimLine | Authorization]:
        for item in parsed:
            if isinstance(item, Rejected):
                if writer:
                    writer.write(item)
            else:
                yield item

    return report, records()
