"""The file_ingest use-case against in-memory fakes: the orchestration rules (idempotency,
resume after a crash, tenant checks). tests/integration proves the same on the emulators."""

import json
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fakes import FakeObjects, FakePublisher, FakeSecrets, FakeTenants, FakeUploads
from tests.x12 import Clp, Svc, build_835
from upstream.events import StorageObjectEvent
from upstream.ports import UploadBusy
from upstream.services.ingest_upload import IngestDeps, ingest_object

BUCKET = "uploads-bucket"
CSV = ("Claim ID,Patient ID,Payer,CPT,DOS,Billed,Status\r\n" + "".join(
    f"C{i},MRN{i:05d},UHC,97153,2024-01-{i % 28 + 1:02d},100.00,Paid\r\n" for i in range(1, 26))
    + "C999,MRN99999,UHC,BAD,2024-01-02,1,Paid\r\n").encode()


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2024, 6, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def make(batch_size: int = 10) -> tuple[IngestDeps, FakeObjects, FakeUploads, FakePublisher,
                                        Clock]:
    objects, uploads, publisher, clock = FakeObjects(), FakeUploads(), FakePublisher(), Clock()
    deps = IngestDeps(tenants=FakeTenants({"acme": {"status": "active"}}), uploads=uploads,
                      objects=objects, publisher=publisher,
                      secrets=FakeSecrets({"patient-hash-key-acme": b"s" * 32}),
                      claims_topic="claims", batch_size=batch_size, parallel_batches=2,
                      clock=clock)
    return deps, objects, uploads, publisher, clock


def event(name: str, data: bytes, objects: FakeObjects,
          generation: str = "1") -> StorageObjectEvent:
    import base64
    import hashlib

    objects.objects[(BUCKET, name)] = data
    return StorageObjectEvent.model_validate({
        "bucket": BUCKET, "name": name, "generation": generation, "size": len(data),
        "md5Hash": base64.b64encode(hashlib.md5(data).digest()).decode()})


def published_changes(publisher: FakePublisher) -> set[tuple[str, str]]:
    return {(c["doc_id"], c["content_hash"]) for _, data, _ in publisher.messages
            for c in json.loads(data)["changes"]}


def test_ingests_stores_publishes_and_writes_rejects() -> None:
    deps, objects, uploads, publisher, _ = make()
    summary = ingest_object(event("uploads/acme/jan.csv", CSV, objects), deps)
    assert summary["status"] == "complete"
    assert (summary["rows"], summary["accepted"], summary["rejected"]) == (26, 25, 1)
    assert len(uploads.records) == 25
    assert len(publisher.messages) == 3 and len(published_changes(publisher)) == 25
    rejects = objects.objects[(BUCKET, "rejects/acme/jan.csv")].decode()
    assert "invalid_cpt" in rejects and rejects.count("\r\n") == 2
    assert all(topic == "claims" for topic, _, _ in publisher.messages)


def test_same_object_twice_and_same_bytes_under_another_name_change_nothing() -> None:
    deps, objects, uploads, publisher, _ = make()
    ingest_object(event("uploads/acme/jan.csv", CSV, objects), deps)
    writes, messages = uploads.writes, len(publisher.messages)
    again = ingest_object(event("uploads/acme/jan.csv", CSV, objects), deps)
    renamed = ingest_object(event("uploads/acme/claims/copy.csv", CSV, objects, "2"), deps)
    assert again["status"] == renamed["status"] == "duplicate"
    assert (uploads.writes, len(publisher.messages)) == (writes, messages)


def test_a_crash_halfway_is_finished_by_the_redelivery_without_doubling() -> None:
    deps, objects, uploads, publisher, clock = make()
    publisher.fail_on_call = 1  # the second batch's publish fails: the delivery crashes
    ev = event("uploads/acme/jan.csv", CSV, objects)
    with pytest.raises(ConnectionError):
        ingest_object(ev, deps)
    with pytest.raises(UploadBusy):  # redelivered while the lease is still held
        ingest_object(ev, deps)
    clock.now += timedelta(seconds=deps.lease_seconds + 1)
    summary = ingest_object(ev, deps)
    assert summary["status"] == "complete" and summary["stored"] == 25
    assert len(uploads.records) == 25
    assert len(published_changes(publisher)) == 25
    # Only batches not yet published were published again: no message sent twice.
    batches = [json.loads(d)["batch"] for _, d, _ in publisher.messages]
    assert sorted(batches) == sorted(set(batches)) == [0, 1, 2]


@pytest.mark.parametrize("name", ["uploads/jan.csv", "uploads/nobody/jan.csv",
                                  "uploads/../acme/jan.csv"])
def test_no_or_wrong_tenant_stores_nothing_and_says_why(name: str) -> None:
    deps, objects, uploads, publisher, _ = make()
    summary = ingest_object(event(name, CSV, objects), deps)
    assert summary["status"] == "failed" and summary["error"] == "unknown_tenant"
    assert uploads.records == {} and publisher.messages == []
    assert any(key[1].endswith(".error.txt") for key in objects.objects)


def test_objects_outside_uploads_are_ignored() -> None:
    deps, objects, uploads, _, _ = make()
    assert ingest_object(event("rejects/acme/jan.csv", CSV, objects), deps)["status"] == "ignored"
    assert uploads.uploads == {}


@pytest.mark.parametrize(("data", "error"), [
    (b"%PDF-1.4 binary", "not_csv"), (b"", "empty_file"), (b"\x00\x01\x02" * 50, "binary_file"),
    (b"Name,Address\r\nBob,Main St\r\n", "no_header"),
])
def test_files_that_cannot_be_read_end_as_a_failed_summary(data: bytes, error: str) -> None:
    deps, objects, uploads, _, _ = make()
    summary = ingest_object(event("uploads/acme/x.csv", data, objects), deps)
    assert summary["status"] == "failed" and summary["error"] == error
    assert uploads.records == {}
    stored = next(iter(uploads.uploads.values()))
    assert stored["status"] == "failed" and stored["error"] == error


REMIT_CLAIMS = (b"Claim ID,Line,Patient ID,Payer,CPT,DOS,Billed,Status\r\n"
                b"R1,1,MRN1,UHC,97153,2024-01-05,100.00,Submitted\r\n"
                b"R1,2,MRN1,UHC,97155,2024-01-05,100.00,Submitted\r\n"
                b"R2,1,MRN2,UHC,97153,2024-01-05,100.00,Submitted\r\n")
REMIT = build_835([
    Clp("R1", "1", "200", "100", [
        Svc("97153", "100", "100", line_ref="1"),
        Svc("97155", "100", "0", cas=(("CO", "197", "100"),), remarks=("N54",))]),
    Clp("R2", "4", "100", "0", [Svc("97153", "100", "0", cas=(("CO", "50", "100"),))]),
    Clp("UNKNOWN", "1", "100", "100", [Svc("97153", "100", "100")]),
])


def _stored_by_claim(uploads: FakeUploads) -> dict[tuple[str, str], dict[str, object]]:
    return {(d["claim_id"], d["cpt"]): d for (_, kind, _), d in uploads.records.items()
            if kind == "claims"}


@pytest.mark.parametrize("name", ["uploads/acme/remittance/jan.835", "uploads/acme/era.txt"])
def test_an_835_posts_outcomes_onto_the_stored_lines(name: str) -> None:
    """In the remittance folder, or anywhere with an ISA header (detected)."""
    deps, objects, uploads, publisher, clock = make()
    ingest_object(event("uploads/acme/claims/jan.csv", REMIT_CLAIMS, objects), deps)
    before = len(publisher.messages)
    clock.now += timedelta(days=20)
    summary = ingest_object(event(name, REMIT, objects), deps)
    assert summary["status"] == "complete" and summary["kind"] == "remittance"
    assert (summary["claims"], summary["accepted"], summary["rejected"]) == (3, 3, 1)
    assert summary["reasons"] == {"claim_not_found": 1}
    lines = _stored_by_claim(uploads)
    assert lines[("R1", "97153")]["outcome"] == "PAID"
    assert lines[("R1", "97153")]["paid_cents"] == 10000
    assert lines[("R1", "97155")]["outcome"] == "DENIED"
    assert lines[("R1", "97155")]["carc_codes"] == ["CO-197"]
    assert lines[("R1", "97155")]["rarc_codes"] == ["N54"]
    assert lines[("R2", "97153")]["outcome"] == "DENIED"
    assert lines[("R2", "97153")]["decided_date"] == "2024-01-20"
    assert lines[("R2", "97153")]["patient_key"] == lines[("R2", "97153")]["patient_key"]
    changed = {c["record"]["claim_id"] for _, data, _ in publisher.messages[before:]
               for c in json.loads(data)["changes"]}
    assert changed == {"R1", "R2"}
    report = objects.objects[(BUCKET, "rejects/acme/" + name.removeprefix("uploads/acme/"))]
    assert b"claim_not_found" in report and b"UNKNOWN" in report


def test_the_same_835_twice_changes_nothing_the_second_time() -> None:
    deps, objects, uploads, publisher, _ = make()
    ingest_object(event("uploads/acme/claims/jan.csv", REMIT_CLAIMS, objects), deps)
    ingest_object(event("uploads/acme/remittance/a.835", REMIT, objects), deps)
    snapshot, sent = dict(uploads.records), len(publisher.messages)
    again = ingest_object(event("uploads/acme/remittance/copy.835", REMIT, objects), deps)
    assert again["status"] == "duplicate"
    assert uploads.records == snapshot and len(publisher.messages) == sent


def test_the_same_payments_in_a_new_envelope_publish_identical_hashes() -> None:
    """A payer re-sending the same ERA under a new control number is new bytes, but the lines
    it writes are identical: consumers see the same (doc id, content hash) and skip them."""
    deps, objects, _, publisher, _ = make()
    ingest_object(event("uploads/acme/claims/jan.csv", REMIT_CLAIMS, objects), deps)
    ingest_object(event("uploads/acme/remittance/a.835", REMIT, objects), deps)
    first = published_changes(publisher)
    resent = REMIT.replace(b"000000907", b"000000908")
    ingest_object(event("uploads/acme/remittance/b.835", resent, objects), deps)
    assert published_changes(publisher) == first


@pytest.mark.parametrize("data, error", [
    (build_835([Clp("R1", "1", "100", "100", [Svc("97153", "100", "100")])], se_delta=2),
     "malformed_835"),
    (b"ISA*00*", "malformed_835"),
    (b"garbage that is not X12", "not_x12"),
])
def test_a_malformed_835_is_refused_with_segment_and_reason(data: bytes, error: str) -> None:
    deps, objects, uploads, _, _ = make()
    ingest_object(event("uploads/acme/claims/jan.csv", REMIT_CLAIMS, objects), deps)
    before = dict(uploads.records)
    summary = ingest_object(event("uploads/acme/remittance/bad.835", data, objects), deps)
    assert summary["status"] == "failed" and summary["error"] == error
    assert uploads.records == before
    report = objects.objects[(BUCKET, "rejects/acme/remittance/bad.835")].decode()
    assert error in report
    if error == "malformed_835" and len(data) > 100:
        assert "SE count" in summary["message"] and summary["problems"]


def test_logs_carry_no_patient_identifiers(caplog: pytest.LogCaptureFixture) -> None:
    deps, objects, _, _, _ = make()
    with caplog.at_level(logging.DEBUG):
        ingest_object(event("uploads/acme/jan.csv", CSV, objects), deps)
    text = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "MRN" not in text and "upload ingested" in text


class CountingAggregates:
    """Counts what ingest hands it; `new` says whether the lines were all new to the ledger."""

    def __init__(self, new: bool) -> None:
        self.new, self.calls = new, 0

    def apply(self, customer_id: str, changes: Any) -> int:
        raise AssertionError("ingest only counts new lines")

    def apply_new(self, customer_id: str, changes: Any) -> bool:
        assert customer_id == "acme" and all(c[3]["customer_id"] == "acme" for c in changes)
        self.calls += 1
        return self.new

    def cells(self, customer_id: str, first: Any, end: Any) -> list[Any]:
        return []


@pytest.mark.parametrize("new, flag", [(True, "1"), (False, None)])
def test_a_claims_file_counts_its_lines_and_flags_only_what_it_counted(
        new: bool, flag: str | None) -> None:
    deps, objects, _, publisher, _ = make()
    aggregates = CountingAggregates(new)
    ingest_object(event("uploads/acme/jan.csv", CSV, objects), replace(deps, aggregates=aggregates))
    assert aggregates.calls == len(publisher.messages) == 3
    assert {attributes.get("aggregated") for _, _, attributes in publisher.messages} == {flag}
    assert {json.loads(data)["aggregated"] for _, data, _ in publisher.messages} == {new}


def test_remittances_and_authorizations_are_left_to_the_aggregator() -> None:
    deps, objects, _, publisher, clock = make()
    ingest_object(event("uploads/acme/claims/jan.csv", REMIT_CLAIMS, objects), deps)
    aggregates = CountingAggregates(True)
    counting = replace(deps, aggregates=aggregates)
    clock.now += timedelta(days=20)
    before = len(publisher.messages)
    ingest_object(event("uploads/acme/remittance/jan.835", REMIT, objects), counting)
    auths = (b"Auth Number,Patient ID,Payer,Start Date,End Date,Units Approved\r\n"
             b"A1,MRN1,UHC,2024-01-01,2024-06-30,40\r\n")
    ingest_object(event("uploads/acme/authorizations/a.csv", auths, objects), counting)
    assert aggregates.calls == 0 and len(publisher.messages) > before
    assert all("aggregated" not in a for _, _, a in publisher.messages[before:])
