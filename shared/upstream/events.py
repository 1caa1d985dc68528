"""Typed, versioned messages between functions (never raw dicts on the wire)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import date, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field


class CloudEventLike(Protocol):
    """What functions-framework hands a CloudEvent function (`cloudevents.http.CloudEvent`)."""

    data: Any

    def __getitem__(self, key: str) -> Any: ...


class StorageObjectEvent(BaseModel):
    """`google.cloud.storage.object.v1.finalized` data (StorageObjectData, JSON form)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    bucket: str
    name: str
    generation: str
    size: int = 0
    md5_hash: str | None = Field(None, alias="md5Hash")
    crc32c: str | None = None
    content_type: str | None = Field(None, alias="contentType")
    time_created: datetime | None = Field(None, alias="timeCreated")

    @classmethod
    def from_cloud_event(cls, event: CloudEventLike) -> StorageObjectEvent:
        data = event.data
        if isinstance(data, (bytes, str)):
            data = json.loads(data)
        return cls.model_validate(data)

    def content_id(self) -> str:
        """Same bytes ⇒ same id, whatever the object is called: a re-upload is recognised.

        Cloud Storage computes md5Hash for every non-composite object; a composite object
        (no md5) falls back to its name and generation, i.e. that upload only.
        """
        if self.md5_hash:
            try:
                return content_id(base64.b64decode(self.md5_hash).hex(), self.size)
            except (binascii.Error, ValueError):
                pass
        return "gen-" + base64.urlsafe_b64encode(
            f"{self.name}#{self.generation}".encode()).decode().rstrip("=")


def content_id(md5_hex: str, size: int) -> str:
    """The upload id of an object with this MD5 and size (see `StorageObjectEvent`)."""
    return f"md5-{md5_hex}-{size}"


class RecordChange(BaseModel):
    model_config = ConfigDict(frozen=True)

    doc_id: str
    content_hash: str
    record: dict[str, Any]


class RecordChangeBatch(BaseModel):
    """Published on the `claims` topic for every committed batch of claim lines or
    authorizations. Consumers dedupe on (doc_id, content_hash): delivery is at least once."""

    model_config = ConfigDict(frozen=True)

    version: Literal[1] = 1
    kind: Literal["claims", "authorizations"]
    customer_id: str
    upload_id: str
    batch: int
    changes: list[RecordChange]
    # True when the writer counted these lines into the aggregates in its own commits (a
    # claims file's first ingest); the aggregator then has nothing to do.
    aggregated: bool = False

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    def own_changes(self) -> tuple[list[RecordChange], int]:
        """The changes whose record belongs to the batch's tenant, and how many did not: a
        record claiming another tenant is refused by every consumer, never acted on."""
        own = [c for c in self.changes if c.record.get("customer_id") == self.customer_id]
        return own, len(self.changes) - len(own)

    def attributes(self) -> dict[str, str]:
        attributes = {"customer_id": self.customer_id, "kind": self.kind, "version": "1"}
        if self.aggregated:
            attributes["aggregated"] = "1"
        return attributes

    @staticmethod
    def already_aggregated(event: CloudEventLike) -> bool:
        """Read from the attributes, so the aggregator skips such a message without decoding
        its hundreds of records."""
        message = event.data.get("message") if isinstance(event.data, dict) else None
        attributes = message.get("attributes") if isinstance(message, dict) else None
        return isinstance(attributes, dict) and attributes.get("aggregated") == "1"

    @classmethod
    def from_cloud_event(cls, event: CloudEventLike) -> RecordChangeBatch:
        message = event.data["message"]
        return cls.model_validate_json(base64.b64decode(message["data"]))

    @classmethod
    def of_claims(cls, customer_id: str, upload_id: str,
                  written: list[tuple[str, dict[str, Any]]]) -> RecordChangeBatch:
        """The message for claim lines written outside an upload (EHR events)."""
        return cls(kind="claims", customer_id=customer_id, upload_id=upload_id, batch=0,
                   changes=[RecordChange(doc_id=doc_id, content_hash=doc["content_hash"],
                                         record=doc) for doc_id, doc in written])


class DetectorRun(BaseModel):
    """What Cloud Scheduler publishes on `detector-runs` (and what the fan-out republishes,
    one message per tenant): `{"run": "daily"|"weekly"|"uploads", "customer": "<id>"|"*",
    "as_of"}`. `as_of` is the run day (data strictly before it); default: today (UTC).
    `uploads` is the hourly watch for uploads stuck in `processing` (Contract 7)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run: Literal["daily", "weekly", "uploads"]
    customer: str = Field(min_length=1, max_length=63, pattern=r"^(\*|[A-Za-z0-9][A-Za-z0-9_-]*)$")
    as_of: date | None = None

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_cloud_event(cls, event: CloudEventLike) -> DetectorRun:
        message = event.data["message"]
        return cls.model_validate_json(base64.b64decode(message["data"]))
