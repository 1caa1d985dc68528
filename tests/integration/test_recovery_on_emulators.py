"""Contract 7 on the real emulators and the running stack: dead letters listed and replayed
through the aggregator, aggregates reconciled after changes were lost, the weekly
self-check, and the hourly upload watch."""

from __future__ import annotations

import json
import logging
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from google.cloud import pubsub_v1  # type: ignore[attr-defined]

from tests.conftest import emulator_db, wait_for
from tests.integration.test_detection_on_emulators import _versions
from upstream.adapters.firestore_aggregates import AGGREGATES, LEDGER, FirestoreAggregates
from upstream.adapters.firestore_reconcile import FirestoreReconcile
from upstream.adapters.firestore_store import FirestoreUploads, tenant_collection
from upstream.adapters.pubsub_dead_letters import PubSubDeadLetters
from upstream.domain.aggregates import cells_from_documents, line_changes
from upstream.domain.records import document_hash
from upstream.events import RecordChange, RecordChangeBatch
from upstream.services.detector_runs import DetectorDeps, watch_uploads
from upstream.services.recovery import list_held, reconcile, replay_held, self_check
from upstream.stack.config import StackConfig

pytestmark = pytest.mark.emulators
FAR = (date(2020, 1, 1), date(2030, 1, 1))


def _latest(versions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for doc in versions:
        latest[doc["doc_id"]] = doc
    return latest


def _store_lines(config: StackConfig, customer: str, docs: dict[str, dict[str, Any]]) -> None:
    db = emulator_db(config)
    claims = tenant_collection(db, customer, "claims")
    batch = db.batch()
    for doc_id, doc in docs.items():
        body = {k: v for k, v in doc.items() if k != "doc_id"}
        batch.set(claims.document(doc_id), {**body, "content_hash": document_hash(doc)})
    batch.commit()


def _cells(config: StackConfig, customer: str) -> dict[tuple[str, date], dict[str, float]]:
    stored = FirestoreAggregates(emulator_db(config)).cells(customer, *FAR)
    return {(c.payer, c.day): {k: v for k, v in c.counters.items() if v} for c in stored
            if any(c.counters.values())}


def _expected(docs: dict[str, dict[str, Any]]) -> dict[tuple[str, date], dict[str, float]]:
    return {(c.payer, c.day): dict(c.counters) for c in cells_from_documents(docs.values())}


def test_reconcile_repairs_lost_changes_and_then_finds_nothing(clean_stack: StackConfig,
                                                                unique: str) -> None:
    customer = f"rec-{unique}"
    versions = _versions(customer, 300, seed=11)
    latest = _latest(versions)
    _store_lines(clean_stack, customer, latest)
    # The aggregator saw only some changes: a crash lost the rest (the first round's finding).
    changes = line_changes((d["doc_id"], document_hash(d), d) for d in versions)
    kept = [c for c in changes if random.Random(c[0]).random() < 0.4]
    FirestoreAggregates(emulator_db(clean_stack)).apply(customer, kept)
    # and one cell was corrupted by hand, one left behind where no line lands
    db = emulator_db(clean_stack)
    aggregates = tenant_collection(db, customer, AGGREGATES)
    aggregates.document("ffffffffffffffff_2025-01-01").set(
        {"payer": "Nobody", "day": "2025-01-01", "decided": 3})
    assert _cells(clean_stack, customer) != _expected(latest)

    store = FirestoreReconcile(db)
    check = self_check(customer, store)
    assert check["status"] == "reconciled" and check["cells_wrong"] > 0, check
    assert _cells(clean_stack, customer) == _expected(latest)
    # the ledger now holds every line's latest version: a late redelivery moves nothing
    assert FirestoreAggregates(db).apply(customer, changes) == 0
    assert _cells(clean_stack, customer) == _expected(latest)
    again = reconcile(customer, store)
    assert (again["cells_wrong"], again["ledger_wrong"]) == (0, 0)
    assert self_check(customer, store)["status"] == "consistent"
    # a dry run reports and changes nothing
    aggregates.document("ffffffffffffffff_2025-01-02").set(
        {"payer": "Nobody", "day": "2025-01-02", "denied": 1})
    dry = reconcile(customer, store, apply=False)
    assert dry["cells_wrong"] == 1 and not dry["repaired"]
    assert aggregates.document("ffffffffffffffff_2025-01-02").get().exists


def test_reconcile_never_touches_another_tenant(clean_stack: StackConfig, unique: str) -> None:
    mine, theirs = f"mine-{unique}", f"theirs-{unique}"
    for customer in (mine, theirs):
        _store_lines(clean_stack, customer, _latest(_versions(customer, 40, seed=2)))
    db = emulator_db(clean_stack)
    reconcile(mine, FirestoreReconcile(db))
    assert _cells(clean_stack, mine)
    assert not list(tenant_collection(db, theirs, AGGREGATES).stream())
    assert not list(tenant_collection(db, theirs, LEDGER).stream())


def _batch(customer: str, docs: dict[str, dict[str, Any]]) -> RecordChangeBatch:
    return RecordChangeBatch(kind="claims", customer_id=customer, upload_id="dlq-test", batch=0,
                             changes=[RecordChange(doc_id=doc_id, content_hash=document_hash(d),
                                                   record={k: v for k, v in d.items()
                                                           if k != "doc_id"})
                                      for doc_id, d in docs.items()])


def test_dead_letters_are_listed_and_replayed_into_the_aggregator(clean_stack: StackConfig,
                                                                   unique: str) -> None:
    """What Pub/Sub dead-letters after its attempts: held, listed per tenant with the
    reason, replayed to `claims`, and aggregated by the running aggregator exactly once."""
    config = clean_stack
    mine, other = f"dlq-{unique}", f"dlq-other-{unique}"
    docs = {d: v for d, v in _latest(_versions(mine, 30, seed=4)).items()}
    publisher = pubsub_v1.PublisherClient()
    dlq = publisher.topic_path(config.project, "claims-dlq")
    attempts = {"CloudPubSubDeadLetterSourceDeliveryCount": "100",
                "CloudPubSubDeadLetterSourceSubscription": "aggregator-push"}
    for customer, payload in ((mine, _batch(mine, docs)), (other, _batch(other, {}))):
        publisher.publish(dlq, payload.to_bytes(), customer_id=customer,
                          **attempts).result(timeout=30)
    hold = PubSubDeadLetters(pubsub_v1.SubscriberClient(), publisher, config.project)

    listing = wait_for(lambda: (found := list_held("claims", hold, mine))["held"] and found)
    assert listing["reasons"] == {"delivery failed 100 times": 1}
    assert listing["oldest"] and list_held("claims", hold, mine)["held"] == 1  # peek keeps it
    assert list_held("claims", hold, other)["held"] == 1

    result = replay_held("claims", hold, mine)
    assert result["replayed"] == 1
    expected = _expected(docs)
    wait_for(lambda: _cells(config, mine) == expected, timeout=60)
    assert list_held("claims", hold, mine)["held"] == 0
    assert list_held("claims", hold, other)["held"] == 1  # another tenant's stays held
    # replaying the same batch again (as if the first replay were doubled) moves nothing
    publisher.publish(dlq, _batch(mine, docs).to_bytes(), customer_id=mine).result(timeout=30)
    wait_for(lambda: list_held("claims", hold, mine)["held"] == 1)
    assert replay_held("claims", hold, mine)["replayed"] == 1
    wait_for(lambda: list_held("claims", hold, mine)["held"] == 0)
    assert FirestoreAggregates(emulator_db(config)).lines_aggregated(mine) == len(docs)
    assert _cells(config, mine) == expected


def test_the_upload_watch_logs_uploads_processing_for_over_an_hour(
        clean_stack: StackConfig, unique: str, caplog: pytest.LogCaptureFixture) -> None:
    customer = f"watch-{unique}"
    db = emulator_db(clean_stack)
    uploads = tenant_collection(db, customer, "uploads")
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    uploads.document("old").set({"status": "processing", "started_at": now - timedelta(hours=2),
                                 "accepted": 27944})
    uploads.document("young").set({"status": "processing",
                                   "started_at": now - timedelta(minutes=20)})
    uploads.document("done").set({"status": "complete", "started_at": now - timedelta(days=1)})
    deps = DetectorDeps(tenants=None, aggregates=None, alerts=None, publisher=None,  # type: ignore[arg-type]
                        runs_topic="", alerts_topic="", uploads=FirestoreUploads(db),
                        now=lambda: now)
    with caplog.at_level(logging.ERROR):
        result = watch_uploads(customer, deps)
    assert result["stuck_uploads"] == 1
    stuck = [r for r in caplog.records if getattr(r, "event", None) == "upload_stuck"]
    assert [r.upload_id for r in stuck] == ["old"]  # type: ignore[attr-defined]
    assert json.dumps(result)
