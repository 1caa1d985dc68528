"""The interfaces use-cases depend on; adapters implement them, tests pass fakes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, BinaryIO, Protocol

from upstream.domain.aggregates import DailyCell
from upstream.domain.detect.findings import Alert
from upstream.domain.records import RecordKind


class UploadStatus(StrEnum):
    PROCESSING = "processing"
    COMPLETE = "complete"
    FAILED = "failed"


@dataclass(slots=True)
class UploadClaim:
    """What `begin_upload` hands back: either the right to process, or why not."""

    started_at: datetime
    published_batches: set[int] = field(default_factory=set)
    finished: dict[str, Any] | None = None  # the stored summary when already done


class UploadBusy(RuntimeError):
    """Another delivery holds the upload's lease: raise so Eventarc retries later."""


class ServiceUnavailable(RuntimeError):
    """A backing service (Identity Platform) did not answer: an outage, answered 503 and
    retried by the person, never a refusal of what they typed nor a 500."""


class TenantDirectory(Protocol):
    def get(self, customer_id: str) -> dict[str, Any] | None: ...


class UploadRepository(Protocol):
    def begin_upload(self, customer_id: str, upload_id: str, meta: dict[str, Any],
                     owner: str, now: datetime, lease_seconds: int) -> UploadClaim: ...

    def write_batch(self, customer_id: str, upload_id: str, kind: RecordKind, batch: int,
                    documents: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """`documents`: (doc id, document) pairs from `records.stored_document`."""
        ...

    def mark_published(self, customer_id: str, upload_id: str, batch: int) -> None: ...

    def finish_upload(self, customer_id: str, upload_id: str, summary: dict[str, Any]) -> None: ...

    def note_duplicate(self, customer_id: str, upload_id: str, object_name: str) -> None: ...

    def lines_of_claims(self, customer_id: str, claim_ids: Sequence[str],
                        ) -> dict[str, list[tuple[str, dict[str, Any]]]]:
        """Stored claim lines by claim id, as (doc id, document): what an 835 posts onto."""
        ...


class ObjectStore(Protocol):
    def open_read(self, bucket: str, name: str) -> BinaryIO: ...

    def write(self, bucket: str, name: str, data: BinaryIO, content_type: str) -> None: ...


class Publisher(Protocol):
    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> None:
        """Returns once the message is accepted by Pub/Sub; raises if it was not."""
        ...


class SecretStore(Protocol):
    def get(self, name: str) -> bytes | None: ...

    def get_recent(self, name: str) -> list[bytes]:
        """The newest enabled versions, newest first (at most two): during a rotation the
        old and the new secret both verify."""
        ...

    def put(self, name: str, value: bytes) -> None: ...


class AggregateStore(Protocol):
    def apply(self, customer_id: str, changes: Sequence[tuple[str, datetime, str, dict[str, Any]]],
              ) -> int: ...

    def apply_new(self, customer_id: str,
                  changes: Sequence[tuple[str, datetime, str, dict[str, Any]]]) -> bool: ...

    def cells(self, customer_id: str, first: date, end: date) -> list[DailyCell]: ...


class PayerReportStore(Protocol):
    def save_payer_report(self, customer: str, as_of: date,
                          payers: list[dict[str, Any]]) -> None: ...

    def payer_report(self, customer: str) -> dict[str, Any] | None: ...


class AlertStore(Protocol):
    def recent(self, customer_id: str, since: date) -> list[Alert]: ...

    def save(self, customer_id: str, alerts: Iterable[Alert], known: set[str]) -> list[str]: ...

    def get(self, customer_id: str, alert_id: str) -> dict[str, Any] | None: ...

    def mark_published(self, customer_id: str, alert_id: str, severity: str) -> None: ...

    def record_run(self, customer_id: str, run_id: str, summary: dict[str, Any]) -> None: ...


class AuthorizationSource(Protocol):
    def authorizations(self, customer_id: str) -> list[dict[str, Any]]: ...

    def lines_for_authorizations(self, customer_id: str, numbers: Sequence[str],
                                 patient_keys: Sequence[str]) -> list[dict[str, Any]]: ...

    def denied_lines(self, customer_id: str, payer: str, first: str,
                     end: str) -> list[dict[str, Any]]: ...

    def set_authorization_status(self, customer_id: str, number: str, status: str) -> None: ...

    def lines_since(self, customer_id: str, since: str) -> list[dict[str, Any]]: ...


class NetworkStore(Protocol):
    def signal(self, payer: str, tenant: str, day: date) -> None: ...

    def signals(self, payer: str, since: date) -> list[dict[str, Any]]: ...

    def record_change(self, payer: str, day: date, practices: int,
                      pooled: dict[str, Any] | None = None) -> None:
        """`pooled`: the pooled test's verdict, when that test (not signals) found it."""
        ...

    def changes(self, payers: Iterable[str], since: date) -> list[dict[str, Any]]: ...

    def contribute(self, payer: str, tenant: str,
                   days: Mapping[date, Mapping[str, Any]]) -> None:
        """The practice's counts of each day (`decided`, `denied`, `lag`: days → paid lines),
        replacing what it sent before for those days."""
        ...

    def pool(self, payer: str, since: date) -> dict[date, dict[str, dict[str, Any]]]:
        """day → tenant token → that practice's counts of the day."""
        ...


class IdempotencyStore(Protocol):
    def claim(self, key: str, expire_at: datetime, now: datetime) -> bool:
        """True when the key is new (or its previous claim expired); False for a repeat."""
        ...

    def release(self, key: str) -> None: ...


class TenantLister(Protocol):
    def list_ids(self) -> list[str]: ...


class TenantReader(Protocol):
    def get(self, customer_id: str) -> dict[str, Any] | None: ...


class TenantStore(TenantReader, Protocol):
    def upsert(self, customer_id: str, fields: dict[str, Any]) -> None: ...


class RiskStore(Protocol):
    def scored_hashes(self, customer_id: str, doc_ids: Sequence[str]) -> dict[str, str]:
        """doc id → content hash of the line version last scored."""
        ...

    def save_scores(self, customer_id: str, scores: Mapping[str, dict[str, Any]]) -> None: ...


class AutomationStore(Protocol):
    def begin(self, customer_id: str, action_id: str, document: dict[str, Any]) -> bool:
        """Creates the action; False when it already exists (proposed twice)."""
        ...

    def update(self, customer_id: str, action_id: str, fields: dict[str, Any]) -> None: ...

    def get(self, customer_id: str, action_id: str) -> dict[str, Any] | None: ...

    def actions(self, customer_id: str, status: str | None,
                limit: int) -> list[dict[str, Any]]: ...

    def append_log(self, customer_id: str, entry: dict[str, Any]) -> None:
        """Append-only: an entry is created once and never changed."""
        ...

    def log_entries(self, customer_id: str, limit: int) -> list[dict[str, Any]]: ...


class ReconcileStore(Protocol):
    """What `reconcile` reads and repairs (Contract 7)."""

    def lines(self, customer: str) -> Iterable[tuple[str, dict[str, Any]]]: ...

    def cells(self, customer: str) -> dict[str, tuple[str, str, dict[str, float]]]: ...

    def ledger(self, customer: str) -> dict[str, dict[str, Any]]: ...

    def repair(self, customer: str, cells: Sequence[Any],
               ledger: dict[str, dict[str, Any]]) -> None: ...

    def totals(self, customer: str) -> tuple[Any, Any]:
        """(`Totals` from the lines, `Totals` from the cells)."""
        ...


@dataclass(frozen=True, slots=True)
class HeldMessage:
    """One message in a dead-letter hold: its payload, attributes and when it was first
    published."""

    message_id: str
    data: bytes
    attributes: dict[str, str]
    published_at: datetime

    def original_attributes(self) -> dict[str, str]:
        """The attributes it was first published with: without Pub/Sub's dead-letter ones
        (`CloudPubSubDeadLetter…`) and ours (`reason`, `detail`), which describe the failure."""
        return {k: v for k, v in self.attributes.items()
                if not k.startswith(DEAD_LETTER_ATTRIBUTE_PREFIX)
                and k not in ("reason", "detail")}

    def reason(self) -> str:
        """Why it is held: the reason a function gave, or the delivery attempts exhausted."""
        if self.attributes.get("reason"):
            return self.attributes["reason"]
        attempts = self.attributes.get(f"{DEAD_LETTER_ATTRIBUTE_PREFIX}SourceDeliveryCount")
        return f"delivery failed {attempts} times" if attempts else "unknown"


DEAD_LETTER_ATTRIBUTE_PREFIX = "CloudPubSubDeadLetter"


class DeadLetterHold(Protocol):
    """The `<topic>-dlq-hold` subscriptions (Contract 7)."""

    def peek(self, topic: str) -> list[HeldMessage]:
        """Everything held, left held."""
        ...

    def replay(self, topic: str, chosen: Callable[[HeldMessage], bool]) -> tuple[int, int]:
        """Republishes each chosen message to `topic` (then acknowledges it in the hold);
        the others stay held. Returns (replayed, left)."""
        ...


class ProcessingUploads(Protocol):
    def processing(self, customer_id: str) -> list[dict[str, Any]]:
        """The tenant's upload summaries still `processing` (with `upload_id`,
        `started_at`)."""
        ...
