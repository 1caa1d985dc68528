"""Aggregates and detector runs on the real emulators, through the production adapters and
the running functions (file_ingest → claims → aggregator; detector-runs → detectors)."""

from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore, pubsub_v1, storage  # type: ignore[attr-defined]

from tests.conftest import emulator_db, wait_for
from upstream.adapters.firestore_aggregates import FirestoreAggregates
from upstream.adapters.firestore_alerts import FirestoreAlerts
from upstream.adapters.firestore_api import FirestoreApiStores
from upstream.adapters.firestore_payer_reports import FirestorePayerReports
from upstream.adapters.firestore_store import FirestoreTenants, tenant_collection
from upstream.adapters.secrets import LocalFileSecretStore
from upstream.domain.aggregates import cells_from_documents, line_changes
from upstream.domain.detect.runner import Schedule
from upstream.domain.records import document_hash
from upstream.domain.sample import Shift, export_claims, generate
from upstream.events import DetectorRun
from upstream.services.tenants import patient_key_secret
from upstream.stack.config import StackConfig

pytestmark = pytest.mark.emulators


def _versions(customer: str, lines: int, seed: int) -> list[dict[str, Any]]:
    """Every line in up to three versions: PENDING, DENIED, then PAID after appeal."""
    rng = random.Random(seed)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    documents = []
    for i in range(lines):
        payer = rng.choice(["Aetna", "UnitedHealthcare", "Cigna"])
        submitted = date(2025, 10, 1) + timedelta(days=rng.randint(0, 40))
        line = {"customer_id": customer, "claim_id": f"C{i}", "line_key": "L1",
                "payer": payer, "cpt": rng.choice(["97153", "97155"]), "billed_cents": 10000,
                "submitted_date": submitted.isoformat(), "carc_codes": [],
                "outcome": "PENDING", "decided_date": None, "paid_cents": None}
        steps = [dict(line)]
        if rng.random() < 0.8:
            denied_on = submitted + timedelta(days=rng.randint(5, 30))
            steps.append({**line, "outcome": "DENIED", "decided_date": denied_on.isoformat(),
                          "carc_codes": ["CO-197"], "paid_cents": 0})
            if rng.random() < 0.5:
                paid_on = denied_on + timedelta(days=rng.randint(3, 20))
                steps.append({**line, "outcome": "PAID", "decided_date": paid_on.isoformat(),
                              "paid_cents": 7000})
        for version, step in enumerate(steps):
            step["updated_at"] = (base + timedelta(hours=version)).isoformat()
            documents.append({"doc_id": f"line-{i}", **step})
    return documents


def test_aggregates_equal_a_recompute_after_a_storm_of_duplicates_and_reordering(
        clean_stack: StackConfig, unique: str) -> None:
    customer = f"agg-{unique}"
    versions = _versions(customer, 400, seed=3)
    changes = line_changes((d["doc_id"], document_hash(d), d) for d in versions)
    storm = changes * 3
    random.Random(9).shuffle(storm)
    store = FirestoreAggregates(emulator_db(clean_stack))
    chunks = [storm[i:i + 97] for i in range(0, len(storm), 97)]

    def deliver(chunk: list[Any]) -> int:
        """As Pub/Sub does: a delivery that fails (contention beyond the adapter's own
        retries, on a loaded machine) is delivered again."""
        for attempt in range(5):
            try:
                return store.apply(customer, chunk)
            except Exception:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    with ThreadPoolExecutor(4) as pool:
        moved = sum(pool.map(deliver, chunks))
    latest: dict[str, dict[str, Any]] = {}
    for doc in versions:  # versions are in order per line: the last one wins
        latest[doc["doc_id"]] = doc
    expected = {(c.payer, c.day): dict(c.counters)
                for c in cells_from_documents(latest.values())}
    stored = {(c.payer, c.day): {k: v for k, v in c.counters.items() if v}
              for c in store.cells(customer, date(2025, 1, 1), date(2027, 1, 1))}
    stored = {key: counters for key, counters in stored.items() if counters}
    assert stored == expected
    # Each version moves at most once (duplicates never); a stale version arriving after a
    # newer one never moves; every line moved at least once.
    assert len(latest) <= moved <= len(versions)


def test_a_chunk_overlapping_lines_already_counted_moves_only_the_new_ones(
        clean_stack: StackConfig, unique: str) -> None:
    """The all-new fast path is atomic: one line already in the ledger fails the whole batch
    (nothing half-written), and the transactional path then moves exactly the new lines."""
    customer = f"overlap-{unique}"
    base = {"customer_id": customer, "payer": "Aetna", "cpt": "97153", "billed_cents": 500,
            "submitted_date": "2025-11-01", "decided_date": "2025-11-10", "carc_codes": [],
            "outcome": "DENIED", "updated_at": "2026-01-01T00:00:00+00:00"}
    documents: list[dict[str, Any]] = [{**base, "doc_id": f"line-{i}"} for i in range(10)]
    changes = line_changes((str(d["doc_id"]), document_hash(d), d) for d in documents)
    store = FirestoreAggregates(emulator_db(clean_stack))
    assert store.apply(customer, changes[:4]) == 4
    assert store.apply(customer, changes[:4]) == 0
    assert store.apply(customer, changes[2:]) == 6
    (cell,) = store.cells(customer, date(2025, 11, 1), date(2025, 12, 1))
    assert cell.counters["decided"] == 10 and cell.counters["denied"] == 10
    assert store.lines_aggregated(customer) == 10


def test_a_line_flipping_back_and_forth_ends_where_its_latest_version_is(
        clean_stack: StackConfig, unique: str) -> None:
    customer = f"flip-{unique}"
    base = {"customer_id": customer, "payer": "Aetna", "cpt": "97153", "billed_cents": 500,
            "submitted_date": "2025-11-01", "decided_date": "2025-11-10", "carc_codes": []}
    flips = [{**base, "outcome": outcome, "updated_at": f"2026-01-01T00:00:0{i}+00:00"}
             for i, outcome in enumerate(["DENIED", "PAID", "DENIED", "PAID", "DENIED"])]
    store = FirestoreAggregates(emulator_db(clean_stack))
    changes = line_changes(("one-line", document_hash(d), d) for d in flips)
    for change in reversed(changes):  # newest first: every older one is stale
        store.apply(customer, [change])
    (cell,) = store.cells(customer, date(2025, 11, 1), date(2025, 12, 1))
    assert cell.counters["decided"] == 1 and cell.counters["denied"] == 1


def _tenant(config: StackConfig, customer: str) -> None:
    import os

    LocalFileSecretStore(config.secrets_file).put(patient_key_secret(customer), os.urandom(32))
    FirestoreTenants(emulator_db(config)).upsert(customer, {"name": customer})


def _pull_all(subscriber: pubsub_v1.SubscriberClient, subscription: str,
              quiet_seconds: float = 3.0) -> list[Any]:
    messages: list[Any] = []
    last = time.monotonic()
    while time.monotonic() - last < quiet_seconds:
        response = subscriber.pull(request={"subscription": subscription, "max_messages": 100},
                                   timeout=5)
        if response.received_messages:
            last = time.monotonic()
            messages += response.received_messages
            subscriber.acknowledge(request={"subscription": subscription, "ack_ids": [
                m.ack_id for m in response.received_messages]})
        else:
            time.sleep(0.3)
    return messages


def test_uploaded_sample_to_weekly_run_raises_the_injected_drift_once(
        clean_stack: StackConfig, unique: str) -> None:
    config = clean_stack
    customer = f"drift-{unique}"
    _tenant(config, customer)
    data = generate(date(2025, 3, 1), date(2025, 9, 30), lines_per_day=50, seed=5,
                    shifts=[Shift("Aetna", date(2025, 7, 15), denial_factor=3.0)])
    decided = sum(1 for c in data.claims if c["outcome"] in ("PAID", "PARTIAL", "DENIED"))
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    tap = subscriber.subscription_path(config.project, f"alerts-tap-{unique}")
    subscriber.create_subscription(request={
        "name": tap, "topic": publisher.topic_path(config.project, "alerts")})
    gcs = storage.Client(project=config.project,
                         credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    gcs.bucket(config.bucket).blob(f"uploads/{customer}/claims/year.csv").upload_from_string(
        export_claims(data.claims, "athena", seed=5), content_type="text/csv")

    aggregates = FirestoreAggregates(emulator_db(config))

    def aggregated() -> float:
        cells = aggregates.cells(customer, date(2025, 1, 1), date(2026, 6, 1))
        return sum(c.counters.get("decided", 0) for c in cells)

    # Some rows are broken on purpose by the export; all decided lines that were stored count.
    wait_for(lambda: aggregated() >= decided * 0.97, timeout=240, interval=1)
    settled = aggregated()
    time.sleep(2)
    assert aggregated() == settled  # and nothing more arrives: each change counted once

    run = DetectorRun(run="weekly", customer=customer, as_of=date(2025, 10, 1))
    alerts = FirestoreAlerts(emulator_db(config))
    for attempt in range(2):  # the second run of the same day must change nothing
        publisher.publish(publisher.topic_path(config.project, "detector-runs"),
                          run.to_bytes()).result(timeout=30)
        started = datetime.now(UTC).isoformat()
        wait_for(lambda s=started: (alerts.get_run(customer, "weekly_2025-10-01") or {}).get(
            "finished_at", "") > s, timeout=60)
        if attempt == 0:
            first = alerts.list(customer)
    stored = alerts.list(customer)
    assert stored == first
    # the weekly run also read the year's lines from Firestore (specialty checks) and refitted
    # the practice's risk model on them, judged on the last quarter
    report = (FirestoreTenants(emulator_db(config)).get(customer) or {})["risk_model_report"]
    assert report["train_lines"] + report["holdout_lines"] >= decided * 0.9, report
    assert report["as_of"] == "2025-10-01" and isinstance(report["adopted"], bool)
    drift = [a for a in stored if a["type"] == "denial_rate_drift" and a["payer"] == "Aetna"]
    assert drift, stored
    # and stored the payer report the API and the dashboard read: Aetna named for its denials
    payers = FirestoreApiStores(emulator_db(config)).payer_report(customer) or {}
    assert payers["as_of"] == "2025-10-01"
    named = {p["payer"]: p["archetype"] for p in payers["payers"]}
    assert named["Aetna"] == "Aggressive Denier", named
    assert FirestorePayerReports(emulator_db(config)).payer_report(f"other-{unique}") is None
    assert drift[0]["evidence"]["top_carc"][0]["meaning"]
    lines = drift[0]["evidence"]["affected_lines"]
    assert lines and all(line["patient_key"] and len(line["patient_key"]) == 64 for line in lines)
    assert "patient_id" not in json.dumps(drift)  # keys only, never the raw identifier
    assert not [a for a in stored if a["payer"] != "Aetna" and a["type"] == "denial_rate_drift"]
    published = _pull_all(subscriber, tap)
    bodies = [json.loads(m.message.data) for m in published]
    ids = [b["alert_id"] for b in bodies if "alert_id" in b]
    assert sorted(ids) == sorted(a["alert_id"] for a in stored)  # each alert once
    # the practice's first run: its alerts told in one summary, asked for once
    assert all(a["first_run"] for a in stored)
    (summary,) = [b for b in bodies if "alert_id" not in b]
    assert (summary["digest"], summary["customer"]) == ("first_run", customer)
    assert sorted(a[0] for a in summary["alerts"]) == sorted(ids)
    assert all(m.message.attributes["customer_id"] == customer for m in published)

    # Marked noise, the same drift a week later stays quiet (counted), through Firestore.
    payer_drift = next(a for a in drift if a["scope"] == "payer")
    alerts.set_status(customer, payer_drift["alert_id"], "noise", {"by": "test"})
    later = DetectorRun(run="weekly", customer=customer, as_of=date(2025, 10, 8))
    publisher.publish(publisher.topic_path(config.project, "detector-runs"),
                      later.to_bytes()).result(timeout=30)
    summary = wait_for(lambda: alerts.get_run(customer, "weekly_2025-10-08"), timeout=60)
    assert summary["kept_quiet_as_noise"] >= 1
    quiet = alerts.get(customer, payer_drift["alert_id"]) or {}
    assert (quiet["status"], quiet["suppressed"], quiet["last_seen"]) == (
        "noise", 1, "2025-10-08")
    republished = [json.loads(m.message.data) for m in _pull_all(subscriber, tap)]
    assert not [a for a in republished if (a["type"], a["payer"], a["scope"]) == (
        "denial_rate_drift", "Aetna", "payer")]


def test_a_corrupt_aggregate_fails_its_tenant_only(clean_stack: StackConfig,
                                                   unique: str) -> None:
    config = clean_stack
    good, bad = f"good-{unique}", f"bad-{unique}"
    for customer in (good, bad):
        _tenant(config, customer)
    db = emulator_db(config)
    tenant_collection(db, bad, "aggregates").document("x_2025-09-01").set(
        {"payer": "Aetna", "day": "2025-09-01", "decided": -5})
    publisher = pubsub_v1.PublisherClient()
    run = DetectorRun(run="daily", customer="*", as_of=date(2025, 9, 10))
    publisher.publish(publisher.topic_path(config.project, "detector-runs"),
                      run.to_bytes()).result(timeout=30)
    alerts = FirestoreAlerts(db)
    summary = wait_for(lambda: alerts.get_run(good, "daily_2025-09-10"), timeout=60)
    assert summary["status"] == "complete"
    time.sleep(2)
    assert alerts.get_run(bad, "daily_2025-09-10") is None


def test_a_malformed_run_message_is_dead_lettered_with_its_reason(
        clean_stack: StackConfig, unique: str) -> None:
    config = clean_stack
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    hold = subscriber.subscription_path(config.project, f"dlq-tap-{unique}")
    subscriber.create_subscription(request={
        "name": hold, "topic": publisher.topic_path(config.project, "detector-runs-dlq")})
    publisher.publish(publisher.topic_path(config.project, "detector-runs"),
                      b'{"run": "hourly", "customer": "../etc"}').result(timeout=30)
    messages = wait_for(lambda: _pull_all(subscriber, hold, 1.0), timeout=30)
    (message,) = messages
    assert message.message.attributes["reason"] == "malformed_detector_run"
    assert message.message.data == b'{"run": "hourly", "customer": "../etc"}'  # as sent


def _seed_aggregates(db: firestore.Client, customer: str, cells: list[Any]) -> None:
    from upstream.domain.aggregates import aggregate_key, nest

    batch = db.batch()
    for count, cell in enumerate(cells, 1):
        batch.set(tenant_collection(db, customer, "aggregates").document(
            aggregate_key(cell.payer, cell.day)),
            {"payer": cell.payer, "day": cell.day.isoformat(), **nest(cell.counters)})
        if count % 400 == 0:
            batch.commit()
            batch = db.batch()
    batch.commit()


def test_three_practices_drifting_on_a_payer_alert_every_practice_with_that_payer(
        clean_stack: StackConfig, unique: str) -> None:
    from tests.unit.test_detectors import RUN, stream
    from upstream.adapters.firestore_network import FirestoreNetwork
    from upstream.adapters.firestore_store import FirestoreRecords
    from upstream.adapters.pubsub import PubSubPublisher
    from upstream.services.detector_runs import DetectorDeps, run_tenant

    config = clean_stack
    db = emulator_db(config)
    payer = f"Payer {unique}"
    drifting = [f"n{i}-{unique}" for i in range(3)]
    quiet, elsewhere = f"quiet-{unique}", f"other-{unique}"
    for i, customer in enumerate(drifting):
        _seed_aggregates(db, customer, stream(payer, per_day=30, rate=0.08, seed=i,
                                              change=RUN - timedelta(days=28), factor=2.5))
    _seed_aggregates(db, quiet, stream(payer, per_day=4, rate=0.08, seed=7))
    _seed_aggregates(db, elsewhere, stream("Some Other Payer", per_day=30, rate=0.08, seed=8))
    deps = DetectorDeps(
        tenants=FirestoreTenants(db), aggregates=FirestoreAggregates(db),
        alerts=FirestoreAlerts(db),
        publisher=PubSubPublisher(pubsub_v1.PublisherClient(), config.project),
        runs_topic="detector-runs", alerts_topic="alerts",
        authorizations=FirestoreRecords(db), network=FirestoreNetwork(db),
        network_key=lambda: b"k" * 32)
    for customer in [*drifting, quiet, elsewhere]:
        run_tenant(customer, Schedule.WEEKLY, RUN, deps)
    industry = FirestoreAlerts(db).list(quiet)
    assert [a["type"] for a in industry] == ["industry_payer_change"]
    assert industry[0]["metrics"]["practices"] == 3
    text = json.dumps(industry)
    assert not any(customer in text for customer in drifting)  # nobody's identity leaks
    assert FirestoreAlerts(db).list(elsewhere) == []
    # the first drifting practice ran before the third signal: it hears it on its next run
    run_tenant(drifting[0], Schedule.WEEKLY, RUN + timedelta(days=1), deps)
    assert "industry_payer_change" in {a["type"] for a in FirestoreAlerts(db).list(drifting[0])}


def test_pooled_counts_through_firestore_warn_a_small_practice(
        clean_stack: StackConfig, unique: str) -> None:
    """Ten small practices' weekly runs send their history to the pool (through the real
    adapter); the pooled test then warns each of them of a change none detected alone, and
    a re-run overwrites, never doubles, a practice's counts."""
    from tests.unit.test_detectors import RUN, stream
    from upstream.adapters.firestore_network import FirestoreNetwork
    from upstream.adapters.pubsub import PubSubPublisher
    from upstream.domain.detect.network import payer_token
    from upstream.services.detector_runs import DetectorDeps, run_tenant

    config = clean_stack
    db = emulator_db(config)
    payer = f"Pooled Payer {unique}"
    practices = [f"p{i}-{unique}" for i in range(10)]
    for i, customer in enumerate(practices):
        _seed_aggregates(db, customer, stream(payer, per_day=4, rate=0.08, seed=40 + i,
                                              change=RUN - timedelta(days=35), factor=2.0))
    deps = DetectorDeps(
        tenants=FirestoreTenants(db), aggregates=FirestoreAggregates(db),
        alerts=FirestoreAlerts(db),
        publisher=PubSubPublisher(pubsub_v1.PublisherClient(), config.project),
        runs_topic="detector-runs", alerts_topic="alerts", network=FirestoreNetwork(db),
        network_key=lambda: b"k" * 32)
    for customer in practices:
        run_tenant(customer, Schedule.WEEKLY, RUN, deps)
    pool = FirestoreNetwork(db).pool(payer, RUN - timedelta(days=200))
    assert max(len(counts) for counts in pool.values()) == 10
    before = json.dumps(sorted((d.isoformat(), sorted(c.items())) for d, c in pool.items()))
    run_tenant(practices[0], Schedule.WEEKLY, RUN, deps)  # a re-run: the same pool
    again = FirestoreNetwork(db).pool(payer, RUN - timedelta(days=200))
    assert json.dumps(sorted((d.isoformat(), sorted(c.items())) for d, c in again.items())) \
        == before
    raw = db.collection("network_payers").document(payer_token(payer)).collection(
        "pool").limit(5).stream()
    assert not any(customer in json.dumps(s.to_dict()) for s in raw for customer in practices)
    run_tenant(practices[1], Schedule.DAILY, RUN + timedelta(days=1), deps)
    alerts = FirestoreAlerts(db).list(practices[1])
    pooled = [a for a in alerts if a["type"] == "industry_payer_change"]
    assert pooled and pooled[0]["metrics"]["pooled_ratio"] > 1.2
    assert "network_pooled_cusum" in pooled[0]["methods"]
