"""The risk scorer on the stack: a claims export with pending lines dropped in the bucket →
file_ingest → `claims` → risk_scorer → scores in Firestore and a `high_risk_claim` alert on
the `alerts` topic; the same message redelivered changes nothing; another tenant sees none."""

from __future__ import annotations

import json

import pytest
from google.api_core.exceptions import Conflict
from google.auth.credentials import AnonymousCredentials
from google.cloud import pubsub_v1, storage  # type: ignore[attr-defined]

from tests.conftest import emulator_db, wait_for
from tests.integration.test_detection_on_emulators import _pull_all, _tenant
from upstream.adapters.firestore_alerts import FirestoreAlerts
from upstream.adapters.firestore_automation import FirestoreAutomation
from upstream.adapters.firestore_risk import RISK_SCORES
from upstream.adapters.firestore_store import FirestoreTenants, tenant_collection
from upstream.stack.config import StackConfig

pytestmark = pytest.mark.emulators
HEADER = ("Claim #,Line,Patient ID,Primary Insurance,CPT Code,Mod 1,Units,Dx1,DOS,"
          "Date Billed,Billed,Claim Status,Auth #\n")
ROWS = ("R1,1,55,Cigna,97110,,4,M6281,05/01/2025,05/02/2025,$140.00,Submitted,\n"
        "R1,2,55,Cigna,97110,GP,4,M6281,05/01/2025,05/02/2025,$140.00,Submitted,\n"
        "R2,1,56,Cigna,97110,GP,4,M6281,05/01/2025,05/02/2025,$140.00,Submitted,\n"
        "R3,1,57,Cigna,97110,,4,M6281,05/01/2025,05/02/2025,$140.00,Paid,\n")


def test_pending_lines_are_scored_and_a_high_risk_claim_alerts_once(
        clean_stack: StackConfig, unique: str) -> None:
    config = clean_stack
    customer, other = f"risk-{unique}", f"other-{unique}"
    for name in (customer, other):
        _tenant(config, name)
    db = emulator_db(config)
    FirestoreTenants(db).upsert(customer, {"risk_rules": {"modifiers": [
        {"payer": "Cigna", "cpt": "97110", "modifiers": "GP", "points_missing": 80}]},
        "automation": {"auto_execute": True}})
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    tap = subscriber.subscription_path(config.project, f"risk-tap-{unique}")
    subscriber.create_subscription(request={
        "name": tap, "topic": publisher.topic_path(config.project, "alerts")})
    bucket = storage.Client(project=config.project, credentials=AnonymousCredentials()  # type: ignore[no-untyped-call]
                            ).bucket(config.bucket)
    bucket.blob(f"uploads/{customer}/claims/pending.csv").upload_from_string(
        HEADER + ROWS, content_type="text/csv")
    scores = tenant_collection(db, customer, RISK_SCORES)
    wait_for(lambda: len(list(scores.stream())) == 3, timeout=90, interval=0.5)
    categories = sorted((s["claim_id"], s["line"], s["category"]) for s in
                        (d.to_dict() or {} for d in scores.stream()))
    assert categories == [("R1", 1, "HIGH"), ("R1", 2, "LOW"), ("R2", 1, "LOW")]
    published = [json.loads(m.message.data) for m in _pull_all(subscriber, tap)]
    assert [(a["type"], a["scope"]) for a in published] == [("high_risk_claim", "claim:R1")]
    stored = FirestoreAlerts(db).list(customer)
    assert [a["scope"] for a in stored] == ["claim:R1"]
    assert stored[0]["evidence"]["lines"][0]["fixes"][0]["modifier"] == "GP"
    # the same export again (a new upload of the same bytes is a duplicate: nothing moves)
    bucket.blob(f"uploads/{customer}/claims/pending-copy.csv").upload_from_string(
        HEADER + ROWS, content_type="text/csv")
    assert _pull_all(subscriber, tap) == []
    assert list(tenant_collection(db, other, RISK_SCORES).stream()) == []
    assert FirestoreAlerts(db).list(other) == []

    # the fix ran by itself (one allowed modifier, 97% sure, $140), the hold waits for a
    # biller (score 80 < 95); both once, each with its log entries
    automation = FirestoreAutomation(db)
    actions = sorted((a["action_type"], a["status"])
                     for a in automation.actions(customer, None, 10))
    assert actions == [("add_modifier", "executed"), ("hold_claim", "queued_for_review")]
    entries = automation.log_entries(customer, 10)
    assert sorted(e["event"] for e in entries) == ["classified", "classified", "executed"]
    executed = next(e for e in entries if e["event"] == "executed")
    assert executed["before"] == {"modifiers": []} and executed["after"] == {"modifiers": ["GP"]}
    with pytest.raises(Conflict):  # append-only: an entry cannot be written twice
        automation.append_log(customer, {**executed, "why": "rewritten"})
    assert automation.actions(other, None, 10) == []
