"""Small in-memory fakes of the ports, for unit tests of the use-cases (never the proof that
storage works: tests/integration runs the real adapters on the emulators)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, BinaryIO

from upstream.domain.records import RecordKind
from upstream.ports import UploadBusy, UploadClaim


class FakeObjects:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def open_read(self, bucket: str, name: str) -> BinaryIO:
        return io.BytesIO(self.objects[(bucket, name)])

    def write(self, bucket: str, name: str, data: BinaryIO, content_type: str) -> None:
        self.objects[(bucket, name)] = data.read()


class FakePublisher:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes, dict[str, str]]] = []
        self.fail_on_call: int | None = None

    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> None:
        if self.fail_on_call is not None and len(self.messages) == self.fail_on_call:
            self.fail_on_call = None
            raise ConnectionError("pubsub unavailable")
        self.messages.append((topic, data, attributes))


class FakeSecrets:
    def __init__(self, values: dict[str, bytes] | None = None) -> None:
        self.values = dict(values or {})
        self.previous: dict[str, bytes] = {}

    def get(self, name: str) -> bytes | None:
        return self.values.get(name)

    def put(self, name: str, value: bytes) -> None:
        if name in self.values:
            self.previous[name] = self.values[name]
        self.values[name] = value

    def get_recent(self, name: str) -> list[bytes]:
        return [v for v in (self.values.get(name), self.previous.get(name)) if v is not None]


class FakeTenants:
    def __init__(self, tenants: dict[str, dict[str, Any]]) -> None:
        self.tenants = tenants

    def get(self, customer_id: str) -> dict[str, Any] | None:
        return self.tenants.get(customer_id)


class FakeUploads:
    def __init__(self) -> None:
        self.uploads: dict[tuple[str, str], dict[str, Any]] = {}
        self.batches: dict[tuple[str, str, int], bool] = {}
        self.records: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.writes = 0

    def begin_upload(self, customer_id: str, upload_id: str, meta: dict[str, Any],
                     owner: str, now: datetime, lease_seconds: int) -> UploadClaim:
        key = (customer_id, upload_id)
        current = self.uploads.get(key)
        if current is None:
            self.uploads[key] = {**meta, "status": "processing", "started_at": now,
                                 "lease_until": now + timedelta(seconds=lease_seconds)}
            return UploadClaim(started_at=now)
        if current["status"] != "processing":
            return UploadClaim(started_at=current["started_at"], finished=dict(current))
        if current["lease_until"] > now:
            raise UploadBusy(upload_id)
        current["lease_until"] = now + timedelta(seconds=lease_seconds)
        done = {b for (c, u, b), published in self.batches.items()
                if (c, u) == key and published}
        return UploadClaim(started_at=current["started_at"], published_batches=done)

    def write_batch(self, customer_id: str, upload_id: str, kind: RecordKind, batch: int,
                    documents: Sequence[tuple[str, dict[str, Any]]]) -> None:
        for doc_id, document in documents:
            self.records[(customer_id, kind.value, doc_id)] = document
            self.writes += 1
        self.batches[(customer_id, upload_id, batch)] = False

    def mark_published(self, customer_id: str, upload_id: str, batch: int) -> None:
        self.batches[(customer_id, upload_id, batch)] = True

    def finish_upload(self, customer_id: str, upload_id: str, summary: dict[str, Any]) -> None:
        self.uploads[(customer_id, upload_id)].update(summary)

    def note_duplicate(self, customer_id: str, upload_id: str, object_name: str) -> None:
        self.uploads[(customer_id, upload_id)].setdefault("duplicates", []).append(object_name)

    def lines_of_claims(self, customer_id: str, claim_ids: Sequence[str],
                        ) -> dict[str, list[tuple[str, dict[str, Any]]]]:
        wanted = set(claim_ids)
        found: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for (customer, kind, doc_id), document in self.records.items():
            if customer == customer_id and kind == "claims" and document["claim_id"] in wanted:
                found.setdefault(document["claim_id"], []).append((doc_id, dict(document)))
        return found
