"""The `file_ingest` use-case: one uploaded object → records in Firestore, change messages on
the `claims` topic, a rejects file and an upload summary. Exactly once in effect.

How it stays exactly-once under at-least-once delivery and crashes:
- the upload id is the object's content hash, so the same bytes under any name or
  generation are one upload; a finished upload answers "duplicate" and writes nothing;
- one delivery at a time holds a lease on the upload (a redelivery during a live run raises
  `UploadBusy`, Eventarc retries later; after a crash the lease lapses and the retry takes
  over);
- records go in deterministic batches (file order), each committed atomically with a marker
  document, then published, then the marker is flagged published. A retry skips published
  batches and redoes the others: record writes are idempotent upserts with a fixed
  `updated_at` (the upload's start), so redoing one is byte-identical, and a message
  published twice carries the same (doc_id, content_hash) pairs consumers dedupe on.
"""

from __future__ import annotations

import io
import re
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO, Literal, cast

from upstream.domain.aggregates import line_changes
from upstream.domain.headers import detect_kind, header_test
from upstream.domain.ingest import IngestReport, Parsed, Rejected, parse_records
from upstream.domain.records import Authorization, ClaimLine, RecordKind, stored_document
from upstream.domain.rejects import RejectsWriter
from upstream.domain.remittance import RemittanceUnreadable, looks_like_x12
from upstream.domain.table import UnreadableFile, open_table
from upstream.events import RecordChange, RecordChangeBatch, StorageObjectEvent
from upstream.logs import get_logger
from upstream.ports import (
    AggregateStore,
    ObjectStore,
    Publisher,
    SecretStore,
    TenantDirectory,
    UploadRepository,
    UploadStatus,
)
from upstream.services.ingest_remittance import (
    failure_report,
    failure_summary,
    post_remittance,
    posting_report,
    read_remittance,
    remittance_summary,
    write_report,
)
from upstream.services.tenants import tenant_context

log = get_logger(__name__)

UPLOAD_PREFIX = "uploads/"
REJECTS_PREFIX = "rejects/"
_PATH = re.compile(r"^uploads/(?P<customer>[A-Za-z0-9][A-Za-z0-9_-]{0,62})/(?P<rest>.+)$")
_SUPPORTED_KINDS = (RecordKind.CLAIMS, RecordKind.AUTHORIZATIONS)


@dataclass(frozen=True, slots=True)
class IngestDeps:
    tenants: TenantDirectory
    uploads: UploadRepository
    objects: ObjectStore
    publisher: Publisher
    secrets: SecretStore
    claims_topic: str
    # When set, a claims file's new lines are counted into the aggregates by ingest itself,
    # batch by batch (see `aggregate_changes`); None leaves it all to the aggregator.
    aggregates: AggregateStore | None = None
    batch_size: int = 499
    parallel_batches: int = 4
    lease_seconds: int = 540
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


def rejects_object_name(upload_name: str) -> str:
    """`uploads/acme/claims/jan.csv` → `rejects/acme/claims/jan.csv` (outside `uploads/`, so a
    rejects file never triggers ingestion itself)."""
    return REJECTS_PREFIX + upload_name.removeprefix(UPLOAD_PREFIX)


def _kind_from_path(rest: str) -> RecordKind | None:
    folder = rest.split("/", 1)[0] if "/" in rest else ""
    return RecordKind(folder) if folder in RecordKind._value2member_map_ else None


def ingest_object(event: StorageObjectEvent, deps: IngestDeps) -> dict[str, Any]:
    """Returns the upload summary (also stored under the tenant)."""
    if not event.name.startswith(UPLOAD_PREFIX):
        log.info("object outside uploads/ ignored", extra={"object": event.name})
        return {"status": "ignored", "reason": "not under uploads/"}
    match = _PATH.match(event.name)
    tenant = deps.tenants.get(match["customer"]) if match else None
    if match is None or tenant is None or tenant.get("status", "active") != "active":
        return _reject_object(event, deps, "unknown_tenant",
                              "the path must be uploads/<customer_id>/… for an active tenant")
    customer = match["customer"]
    upload_id = event.content_id()
    meta = {"object": event.name, "bucket": event.bucket, "generation": event.generation,
            "size": event.size, "content_type": event.content_type}
    claim = deps.uploads.begin_upload(customer, upload_id, meta, owner=uuid.uuid4().hex,
                                      now=deps.clock(), lease_seconds=deps.lease_seconds)
    if claim.finished is not None:
        deps.uploads.note_duplicate(customer, upload_id, event.name)
        log.info("upload already ingested", extra={"customer_id": customer, "upload_id": upload_id})
        return {**claim.finished, "status": "duplicate", "duplicate_object": event.name}
    summary = _ingest(event, deps, customer, upload_id, tenant, claim.started_at,
                      claim.published_batches, _kind_from_path(match["rest"]))
    deps.uploads.finish_upload(customer, upload_id, summary)
    log.info("upload ingested", extra={"customer_id": customer, "upload_id": upload_id,
                                       **{k: summary.get(k) for k in ("status", "rows", "accepted",
                                                                      "rejected", "error")}})
    return summary


def _reject_object(event: StorageObjectEvent, deps: IngestDeps, reason: str,
                   message: str) -> dict[str, Any]:
    """No tenant to store under: the reason goes next to the object, visible to whoever can
    see the bucket, and the event is acknowledged (a retry cannot fix a wrong path)."""
    summary = {"status": UploadStatus.FAILED.value, "object": event.name, "error": reason,
               "message": message}
    name = rejects_object_name(event.name) + ".error.txt"
    deps.objects.write(event.bucket, name, io.BytesIO(f"{reason}: {message}\n".encode()),
                       "text/plain")
    log.error("upload refused", extra={"reason": reason, "object": event.name})
    return summary


def _ingest(event: StorageObjectEvent, deps: IngestDeps, customer: str, upload_id: str,
            tenant: dict[str, Any], started_at: datetime, published: set[int],
            path_kind: RecordKind | None) -> dict[str, Any]:
    base: dict[str, Any] = {"upload_id": upload_id, "customer_id": customer,
                            "object": event.name, "started_at": started_at.isoformat()}
    if path_kind is RecordKind.REMITTANCE or (path_kind is None and _is_x12(event, deps)):
        return {**base, **_ingest_remittance(event, deps, customer, upload_id, started_at,
                                             published),
                "finished_at": deps.clock().isoformat()}
    kinds = [path_kind] if path_kind else list(_SUPPORTED_KINDS)
    ctx = tenant_context(customer, tenant, deps.secrets, started_at)
    with deps.objects.open_read(event.bucket, event.name) as stream:
        try:
            table = open_table(stream, header_test(kinds))
        except UnreadableFile as exc:
            return {**base, "status": UploadStatus.FAILED.value, "error": exc.reason,
                    "message": str(exc), "rows": 0, "accepted": 0, "rejected": 0}
        kind = path_kind or detect_kind(table.header)
        report, parsed = parse_records(table, kind, ctx)
        with tempfile.SpooledTemporaryFile(max_size=1 << 20, mode="w+b") as spool:
            text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
            rejects = RejectsWriter(text, table.header)
            records = _divert_rejects(parsed, rejects)
            written = _write_batches(records, deps, customer, upload_id, kind, published,
                                     count_new=kind is RecordKind.CLAIMS)
            text.flush()
            rejects_name = None
            if rejects.count:
                rejects_name = rejects_object_name(event.name)
                spool.seek(0)
                deps.objects.write(event.bucket, rejects_name, cast(BinaryIO, spool), "text/csv")
            text.detach()
    return {**base, **_report_fields(report), "status": UploadStatus.COMPLETE.value,
            "kind": kind.value, "stored": written, "rejects_object": rejects_name,
            "finished_at": deps.clock().isoformat()}


def _is_x12(event: StorageObjectEvent, deps: IngestDeps) -> bool:
    with deps.objects.open_read(event.bucket, event.name) as stream:
        return looks_like_x12(stream.read(512))


def _ingest_remittance(event: StorageObjectEvent, deps: IngestDeps, customer: str,
                       upload_id: str, started_at: datetime, published: set[int],
                       ) -> dict[str, Any]:
    rejects_name = rejects_object_name(event.name)
    try:
        with deps.objects.open_read(event.bucket, event.name) as stream:
            remittance = read_remittance(stream)
    except RemittanceUnreadable as exc:
        write_report(deps.objects, event.bucket, rejects_name, failure_report(exc))
        return {**failure_summary(exc), "rejects_object": rejects_name}
    stored = deps.uploads.lines_of_claims(customer, [c.claim_id for c in remittance.claims])
    posting, written = post_remittance(
        remittance, stored, started_at,
        lambda lines, kind: _write_batches(lines, deps, customer, upload_id, kind, published))
    if posting.rejected:
        write_report(deps.objects, event.bucket, rejects_name, posting_report(posting))
    return {**remittance_summary(remittance, posting, written),
            "rejects_object": rejects_name if posting.rejected else None}


def _report_fields(report: IngestReport) -> dict[str, Any]:
    return {**report.summary(), "encoding": report.encoding, "delimiter": report.delimiter,
            "unknown_columns": report.unknown_columns}


def _divert_rejects(parsed: Iterator[Parsed], rejects: RejectsWriter,
                    ) -> Iterator[ClaimLine | Authorization]:
    for item in parsed:
        if isinstance(item, Rejected):
            rejects.write(item)
        else:
            yield item


def _batches(records: Iterator[ClaimLine | Authorization], size: int,
             ) -> Iterator[list[ClaimLine | Authorization]]:
    batch: list[ClaimLine | Authorization] = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _write_batches(records: Iterator[ClaimLine] | Iterator[ClaimLine | Authorization],
                   deps: IngestDeps,
                   customer: str, upload_id: str, kind: RecordKind, published: set[int],
                   count_new: bool = False) -> int:
    """Commit batches in parallel with a bounded number in flight (memory stays flat).

    With `count_new` (a claims file, whose lines are mostly new) each batch's lines are also
    counted into the aggregates after the records commit and before the publish; a batch
    redone after a crash meets its own ledger entries, counts nothing and leaves its message
    to the aggregator, which skips what the ledger already holds."""
    in_flight = threading.BoundedSemaphore(deps.parallel_batches * 2)
    futures: list[Future[None]] = []
    written = 0

    def commit(index: int, batch: list[ClaimLine | Authorization]) -> None:
        try:
            documents = [stored_document(record) for record in batch]
            deps.uploads.write_batch(customer, upload_id, kind, index, documents)
            aggregated = bool(count_new and deps.aggregates is not None and
                              deps.aggregates.apply_new(customer, line_changes(
                                  (doc_id, doc["content_hash"], doc) for doc_id, doc in documents)))
            message = RecordChangeBatch(
                kind=cast(Literal["claims", "authorizations"], kind.value),
                customer_id=customer, upload_id=upload_id, batch=index,
                changes=[RecordChange(doc_id=doc_id, content_hash=doc["content_hash"],
                                      record=doc) for doc_id, doc in documents],
                aggregated=aggregated)
            deps.publisher.publish(deps.claims_topic, message.to_bytes(), message.attributes())
            deps.uploads.mark_published(customer, upload_id, index)
        finally:
            in_flight.release()

    with ThreadPoolExecutor(deps.parallel_batches, thread_name_prefix="ingest") as pool:
        for index, batch in enumerate(_batches(records, deps.batch_size)):
            written += len(batch)
            if index in published:
                continue
            in_flight.acquire()
            futures.append(pool.submit(commit, index, batch))
            for done in [f for f in futures if f.done()]:
                done.result()  # stop early on the first failure
            futures = [f for f in futures if not f.done()]
    for future in futures:
        future.result()  # re-raise the first failure: the delivery fails and is retried
    return written
