"""file_ingest's use-case with the production adapters on the real emulators."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tracemalloc
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore, pubsub_v1, storage  # type: ignore[attr-defined]

from upstream.adapters.firestore_store import FirestoreRecords, FirestoreTenants, FirestoreUploads
from upstream.adapters.gcs import GcsObjectStore
from upstream.adapters.pubsub import PubSubPublisher
from upstream.adapters.secrets import LocalFileSecretStore
from upstream.domain.records import RecordKind
from upstream.events import StorageObjectEvent
from upstream.ports import UploadBusy
from upstream.services.ingest_upload import IngestDeps, ingest_object
from upstream.stack.config import StackConfig

pytestmark = pytest.mark.emulators

CSV = ("Claim #,Patient ID,Primary Insurance,CPT Code,DOS,Billed,Paid,Claim Status,"
       "Denial Reason\r\n" + "".join(
           f"C{i:04d},MRN{i},{'UHC' if i % 2 else 'Aetna'},97153-HN,01/{i % 28 + 1:02d}/2024,"
           f"\"$1,{i:03d}.50\",0,Denied,CO-97\r\n" for i in range(1, 1201))
       + "C9999,MRN1,UHC,NOPE,01/02/2024,1,0,Denied,\r\n"
       + "C0001,MRN1,UHC,97153-HN,01/02/2024,\"$1,001.50\",0,Denied,CO-97\r\n").encode()


class FlakyPublisher:
    """The real publisher, made to fail once on its n-th call (a crash mid-upload)."""

    def __init__(self, inner: PubSubPublisher, fail_on: int) -> None:
        self.inner, self.calls, self.fail_on = inner, 0, fail_on

    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> None:
        self.calls += 1
        if self.calls == self.fail_on:
            raise ConnectionError("simulated crash")
        self.inner.publish(topic, data, attributes)


@pytest.fixture
def env(clean_stack: StackConfig, unique: str) -> dict[str, Any]:
    project = clean_stack.project
    db = firestore.Client(project=project, credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    gcs = storage.Client(project=project, credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    topic = f"claims-{unique}"
    publisher.create_topic(name=publisher.topic_path(project, topic))
    sub = subscriber.subscription_path(project, f"tap-{unique}")
    subscriber.create_subscription(name=sub, topic=publisher.topic_path(project, topic))
    secrets = LocalFileSecretStore(clean_stack.data_dir / f"secrets-{unique}.json")
    for customer in ("acme", "beta"):
        secrets.put(f"patient-hash-key-{customer}", hashlib.sha256(customer.encode()).digest())
        FirestoreTenants(db).upsert(customer, {"name": customer})
    deps = IngestDeps(tenants=FirestoreTenants(db), uploads=FirestoreUploads(db),
                      objects=GcsObjectStore(gcs), publisher=PubSubPublisher(publisher, project),
                      secrets=secrets, claims_topic=topic, batch_size=499, parallel_batches=4)
    # A bucket of its own: the stack's bridge watches the stack bucket and would deliver
    # these objects to the running file_ingest function as well.
    bucket = gcs.create_bucket(f"it-{unique}").name
    return {"db": db, "gcs": gcs, "deps": deps, "subscriber": subscriber, "sub": sub,
            "bucket": bucket}


def put(env: dict[str, Any], name: str, data: bytes) -> StorageObjectEvent:
    blob = env["gcs"].bucket(env["bucket"]).blob(name)
    blob.upload_from_string(data, content_type="text/csv")
    blob.reload()
    return StorageObjectEvent.model_validate(blob._properties)


def _pull_raw(env: dict[str, Any]) -> list[Any]:
    """Every message waiting on the tap subscription, acknowledged."""
    messages: list[Any] = []
    while True:
        try:
            response = env["subscriber"].pull(subscription=env["sub"], max_messages=100,
                                              timeout=3)
        except FutureTimeout:
            break
        if not response.received_messages:
            break
        env["subscriber"].acknowledge(subscription=env["sub"],
                                      ack_ids=[m.ack_id for m in response.received_messages])
        messages += [m.message for m in response.received_messages]
    return messages


def pull_all(env: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(message.data) for message in _pull_raw(env)]


def snapshot(env: dict[str, Any], customer: str) -> dict[str, Any]:
    docs = env["db"].collection("customers", customer, "claims").stream()
    return {d.id: (d.update_time, d.to_dict()) for d in docs}


def test_file_to_firestore_pubsub_and_rejects(env: dict[str, Any]) -> None:
    summary = ingest_object(put(env, "uploads/acme/claims/jan.csv", CSV), env["deps"])
    assert (summary["status"], summary["rows"], summary["accepted"]) == ("complete", 1202, 1200)
    assert summary["reasons"] == {"duplicate_row": 1, "invalid_cpt": 1}
    assert FirestoreRecords(env["db"]).count("acme", RecordKind.CLAIMS) == 1200
    stored = env["db"].collection("customers", "acme", "claims").limit(1).get()[0].to_dict()
    assert stored["payer"] in ("UnitedHealthcare", "Aetna") and stored["billed_cents"] > 100000
    assert "MRN" not in json.dumps(stored, default=str)
    rejects = env["gcs"].bucket(env["bucket"]).blob("rejects/acme/claims/jan.csv")
    assert b"invalid_cpt" in rejects.download_as_bytes()
    messages = pull_all(env)
    changes = {c["doc_id"] for m in messages for c in m["changes"]}
    assert len(changes) == 1200 and {m["customer_id"] for m in messages} == {"acme"}
    upload = FirestoreUploads(env["db"]).get_upload("acme", summary["upload_id"])
    assert upload is not None and upload["status"] == "complete"


def test_redelivery_and_reupload_change_nothing(env: dict[str, Any]) -> None:
    event = put(env, "uploads/acme/jan.csv", CSV)
    ingest_object(event, env["deps"])
    pull_all(env)
    before = snapshot(env, "acme")
    assert ingest_object(event, env["deps"])["status"] == "duplicate"
    renamed = put(env, "uploads/acme/jan-copy.csv", CSV)
    assert ingest_object(renamed, env["deps"])["status"] == "duplicate"
    assert snapshot(env, "acme") == before  # not even an update_time moved
    assert pull_all(env) == []


def test_crash_halfway_then_redelivery_finishes_exactly_once(env: dict[str, Any]) -> None:
    deps = env["deps"]
    flaky = FlakyPublisher(deps.publisher, fail_on=2)
    crashing = replace(deps, publisher=flaky, parallel_batches=1, lease_seconds=0)
    event = put(env, "uploads/acme/jan.csv", CSV)
    with pytest.raises(ConnectionError):
        ingest_object(event, crashing)
    partial = FirestoreUploads(env["db"]).get_upload("acme", event.content_id())
    assert partial is not None and partial["status"] == "processing"
    summary = ingest_object(event, replace(deps, lease_seconds=0))
    assert summary["status"] == "complete"
    assert FirestoreRecords(env["db"]).count("acme", RecordKind.CLAIMS) == 1200
    messages = pull_all(env)
    assert sorted(m["batch"] for m in messages) == [0, 1, 2]
    assert len({c["doc_id"] for m in messages for c in m["changes"]}) == 1200


def test_a_live_run_is_not_doubled_by_a_concurrent_redelivery(env: dict[str, Any]) -> None:
    deps = env["deps"]
    event = put(env, "uploads/acme/jan.csv", CSV)
    FirestoreUploads(env["db"]).begin_upload(
        "acme", event.content_id(), {}, owner="someone-else",
        now=deps.clock(), lease_seconds=300)
    with pytest.raises(UploadBusy):
        ingest_object(event, deps)


def test_tenants_never_see_each_others_records(env: dict[str, Any]) -> None:
    ingest_object(put(env, "uploads/acme/jan.csv", CSV), env["deps"])
    beta_csv = b"Claim ID,Patient ID,Payer,CPT,DOS\r\nB1,MRN1,Cigna,97155,2024-02-01\r\n"
    ingest_object(put(env, "uploads/beta/feb.csv", beta_csv), env["deps"])
    records = FirestoreRecords(env["db"])
    beta = records.list("beta", RecordKind.CLAIMS, limit=5000)
    assert {r["customer_id"] for r in beta} == {"beta"}
    assert records.count("beta", RecordKind.CLAIMS) == 1
    acme = records.list("acme", RecordKind.CLAIMS, limit=5000)
    assert {r["customer_id"] for r in acme} == {"acme"}
    # Same raw patient id, different tenants → unrelated patient keys.
    acme_keys = {r["patient_key"] for r in records.list("acme", RecordKind.CLAIMS, limit=5000)}
    assert records.list("beta", RecordKind.CLAIMS)[0]["patient_key"] not in acme_keys


def test_wrong_tenant_path_stores_nothing(env: dict[str, Any]) -> None:
    summary = ingest_object(put(env, "uploads/mallory/jan.csv", CSV), env["deps"])
    assert summary["error"] == "unknown_tenant"
    assert env["db"].collection("customers").document("mallory").get().exists is False
    assert env["gcs"].bucket(env["bucket"]).blob("rejects/mallory/jan.csv.error.txt").exists()


def test_storage_reads_stream_in_chunks(env: dict[str, Any]) -> None:
    row = b"C%07d,UHC,97153,2024-01-02\r\n"
    data = b"Claim ID,Payer,CPT,DOS\r\n" + b"".join(row % i for i in range(600_000))
    put(env, "uploads/acme/big.csv", data)
    store = GcsObjectStore(env["gcs"], chunk_bytes=1024 * 1024)
    tracemalloc.start()
    try:
        with store.open_read(env["bucket"], "uploads/acme/big.csv") as stream:
            total = sum(len(chunk) for chunk in iter(lambda: stream.read(1 << 16), b""))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == len(data) > 15_000_000
    assert peak < 5 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB reading {total / 1e6:.1f} MB"


def test_md5_content_id_matches_what_the_cli_computes(env: dict[str, Any]) -> None:
    event = put(env, "uploads/acme/x.csv", CSV)
    assert event.content_id() == f"md5-{hashlib.md5(CSV).hexdigest()}-{len(CSV)}"
    assert base64.b64decode(event.md5_hash or "") == hashlib.md5(CSV).digest()
    assert io.BytesIO(CSV).read(3) == b"Cla"


def test_an_835_posts_onto_the_right_lines_and_only_the_tenants_own(env: dict[str, Any]) -> None:
    """45 claims (two `in` queries of 30), each paid or denied with its CARC; the same ERA
    dropped under another tenant finds none of acme's claims."""
    from tests.x12 import Clp, Svc, build_835

    ingest_object(put(env, "uploads/acme/claims/jan.csv", CSV), env["deps"])
    pull_all(env)
    claims = [Clp(f"C{i:04d}", "1" if i % 3 else "4", "1001.50", "0" if i % 3 == 0 else "900",
                  [Svc("97153", "1001.50", "0" if i % 3 == 0 else "900",
                       day=f"2024{1:02d}{i % 28 + 1:02d}", modifiers=("HN",),
                       cas=(("CO", "50", "1001.50"),) if i % 3 == 0 else
                       (("CO", "45", "101.50"),))]) for i in range(1, 46)]
    era = build_835(claims, payer="UNITEDHEALTHCARE")
    summary = ingest_object(put(env, "uploads/acme/remittance/era.835", era), env["deps"])
    assert summary["status"] == "complete", summary
    assert (summary["claims"], summary["accepted"], summary["rejected"]) == (45, 45, 0)
    stored = {d["claim_id"]: d for _, d in snapshot(env, "acme").values()}
    assert stored["C0003"]["outcome"] == "DENIED" and stored["C0003"]["carc_codes"] == ["CO-50"]
    assert stored["C0004"]["outcome"] == "PAID" and stored["C0004"]["paid_cents"] == 90000
    assert stored["C0004"]["carc_codes"] == ["CO-45"]
    assert stored["C0004"]["decided_date"] == "2024-01-20"
    assert stored["C0046"]["carc_codes"] == ["CO-97"]  # not in the ERA: untouched
    changes = [c for m in pull_all(env) for c in m["changes"]]
    assert len(changes) == 45 and {m["record"]["claim_id"] for m in changes} == {
        f"C{i:04d}" for i in range(1, 46)}
    again = ingest_object(put(env, "uploads/acme/remittance/era-copy.835", era), env["deps"])
    assert again["status"] == "duplicate" and pull_all(env) == []

    foreign = ingest_object(put(env, "uploads/beta/remittance/era.835", era), env["deps"])
    assert foreign["accepted"] == 0 and foreign["reasons"] == {"claim_not_found": 45}
    assert {d["claim_id"]: d for _, d in snapshot(env, "acme").values()} == stored


class _Delivered:
    """A pulled message as the aggregator receives it: data and attributes, base64 body."""

    def __init__(self, data: bytes, attributes: dict[str, str]) -> None:
        self.data: dict[str, Any] = {"message": {"data": base64.b64encode(data).decode(),
                                                 "attributes": attributes}}

    def __getitem__(self, key: str) -> Any:
        return {"type": "google.cloud.pubsub.topic.v1.messagePublished"}[key]


def _pull_deliveries(env: dict[str, Any]) -> list[_Delivered]:
    return [_Delivered(message.data, dict(message.attributes)) for message in _pull_raw(env)]


def _aggregates_and_recompute(env: dict[str, Any], customer: str) -> tuple[Any, Any]:
    from datetime import date

    from upstream.adapters.firestore_aggregates import FirestoreAggregates
    from upstream.domain.aggregates import cells_from_documents

    stored = FirestoreAggregates(env["db"]).cells(customer, date(2020, 1, 1), date(2030, 1, 1))
    docs = [doc for _, doc in snapshot(env, customer).values()]
    recompute = {(c.payer, c.day): dict(c.counters) for c in cells_from_documents(docs)}
    return {(c.payer, c.day): {k: v for k, v in c.counters.items() if v} for c in stored
            if any(c.counters.values())}, recompute


def test_ingest_counts_a_new_file_itself_exactly_once_through_a_crash(env: dict[str, Any],
                                                                      ) -> None:
    """Ingest with the production aggregate store: the crash falls after batch 1's records
    and ledger entries are committed and before its message is published. The redelivery
    redoes batch 1, meets its own ledger entries and leaves that message unflagged; the
    aggregator then skips the flagged messages and moves nothing for the redone one."""
    from upstream.adapters.firestore_aggregates import FirestoreAggregates
    from upstream.services.aggregate_changes import AggregateDeps, handle_change_event

    aggregates = FirestoreAggregates(env["db"])
    deps = replace(env["deps"], aggregates=aggregates)
    event = put(env, "uploads/acme/claims/jan.csv", CSV)
    with pytest.raises(ConnectionError):
        ingest_object(event, replace(deps, publisher=FlakyPublisher(deps.publisher, 2),
                                     parallel_batches=1, lease_seconds=0))
    assert ingest_object(event, replace(deps, lease_seconds=0))["status"] == "complete"
    stored, recompute = _aggregates_and_recompute(env, "acme")
    assert stored == recompute and sum(c.get("decided", 0) for c in stored.values()) == 1200

    deliveries = _pull_deliveries(env)
    flags = sorted((json.loads(base64.b64decode(d.data["message"]["data"]))["batch"],
                    d.data["message"]["attributes"].get("aggregated")) for d in deliveries)
    assert flags == [(0, "1"), (1, None), (2, "1")]
    aggregator = AggregateDeps(aggregates=aggregates, publisher=deps.publisher,
                               claims_topic=deps.claims_topic)
    results = [handle_change_event(d, aggregator) for d in deliveries]
    assert sorted(r["status"] for r in results) == [
        "already_aggregated", "already_aggregated", "applied"]
    assert [r["moved"] for r in results if r["status"] == "applied"] == [0]
    assert _aggregates_and_recompute(env, "acme")[0] == recompute
    assert aggregates.lines_aggregated("acme") == 1200


def test_a_remittance_is_left_to_the_aggregator(env: dict[str, Any]) -> None:
    """Lines an 835 updates already have ledger entries: ingest does not try to count them."""
    from tests.x12 import Clp, Svc, build_835
    from upstream.adapters.firestore_aggregates import FirestoreAggregates

    deps = replace(env["deps"], aggregates=FirestoreAggregates(env["db"]))
    ingest_object(put(env, "uploads/acme/claims/jan.csv", CSV), deps)
    _pull_deliveries(env)
    era = build_835([Clp("C0003", "4", "1001.50", "0", [Svc(
        "97153", "1001.50", "0", day="20240104", modifiers=("HN",),
        cas=(("CO", "50", "1001.50"),))])], payer="UNITEDHEALTHCARE")
    assert ingest_object(put(env, "uploads/acme/remittance/era.835", era), deps)[
        "accepted"] == 1
    [delivery] = _pull_deliveries(env)
    assert "aggregated" not in delivery.data["message"]["attributes"]
