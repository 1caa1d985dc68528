"""The webhook functions running on the stack, over HTTP, with Firestore idempotency keys and
the `ehr-events` topic on the emulators."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests
from google.cloud import pubsub_v1  # type: ignore[attr-defined]

from tests.conftest import emulator_db
from tests.unit.test_webhooks import SECRET, r4b_bundle, sign
from upstream.adapters.firestore_idempotency import FirestoreIdempotency
from upstream.adapters.firestore_store import FirestoreTenants
from upstream.adapters.secrets import LocalFileSecretStore
from upstream.services.tenants import athena_secret
from upstream.stack import manager
from upstream.stack.config import StackConfig

pytestmark = pytest.mark.emulators


def test_athena_notification_over_http_is_published_once(clean_stack: StackConfig,
                                                          unique: str) -> None:
    config = clean_stack
    customer = f"athena-{unique}"
    LocalFileSecretStore(config.secrets_file).put(athena_secret(customer), SECRET)
    FirestoreTenants(emulator_db(config)).upsert(customer, {"athena_practice_id": "195900"})
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    tap = subscriber.subscription_path(config.project, f"ehr-tap-{unique}")
    subscriber.create_subscription(request={
        "name": tap, "topic": publisher.topic_path(config.project, "ehr-events")})
    url = manager.function_urls(config)["athena_webhook"] + f"/{customer}"
    body = r4b_bundle(f"evt-{unique}")
    answers = [requests.post(url, data=body, timeout=10,
                             headers={"X-Hub-Signature": sign(body),
                                      "Content-Type": "application/fhir+json"})
               for _ in range(3)]
    assert [a.json()["status"] for a in answers] == ["accepted", "duplicate", "duplicate"]
    refused = requests.post(url, data=body, timeout=10, headers={"X-Hub-Signature": "sha256=0"})
    assert refused.status_code == 401
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert requests.get(url, timeout=10).status_code == 405
    response = subscriber.pull(request={"subscription": tap, "max_messages": 10}, timeout=10)
    messages = [json.loads(m.message.data) for m in response.received_messages]
    assert len(messages) == 1 and messages[0]["events"][0]["event_id"] == f"evt-{unique}"
    assert messages[0]["customer_id"] == customer


def test_an_expired_key_counts_as_absent(clean_stack: StackConfig, unique: str) -> None:
    keys = FirestoreIdempotency(emulator_db(clean_stack))
    now = datetime.now(UTC)
    assert keys.claim(f"k-{unique}", now + timedelta(hours=1), now)
    assert not keys.claim(f"k-{unique}", now + timedelta(hours=2), now + timedelta(minutes=5))
    later = now + timedelta(hours=3)  # past expire_at; the emulator never deletes it
    assert keys.claim(f"k-{unique}", later + timedelta(hours=24), later)
    keys.release(f"k-{unique}")
    assert keys.claim(f"k-{unique}", later + timedelta(hours=24), later)


def test_signed_fhir_through_the_webhook_lands_as_claim_lines_once(
        clean_stack: StackConfig, unique: str) -> None:
    from tests.conftest import wait_for
    from tests.unit.test_fhir_map import eob
    from upstream.adapters.firestore_aggregates import FirestoreAggregates
    from upstream.adapters.firestore_store import FirestoreRecords
    from upstream.domain.records import RecordKind
    from upstream.services.tenants import patient_key_secret, webhook_secret

    config = clean_stack
    customer = f"ehr-{unique}"
    store = LocalFileSecretStore(config.secrets_file)
    store.put(webhook_secret(customer), SECRET)
    store.put(patient_key_secret(customer), b"p" * 32)
    FirestoreTenants(emulator_db(config)).upsert(customer, {})
    url = manager.function_urls(config)["ehr_webhook"]
    body = json.dumps(eob(id=f"eob-{unique}")).encode()

    first = str(int(datetime.now(UTC).timestamp()))

    def post(key: str, later: int = 0, stamp: str | None = None) -> requests.Response:
        stamp = stamp or str(int(datetime.now(UTC).timestamp()) + later)
        return requests.post(url, data=body, timeout=10, headers={
            "X-Customer-ID": customer, "X-Idempotency-Key": key, "X-Timestamp": stamp,
            "X-Signature": sign(stamp.encode() + b"." + body)})

    assert post(f"k-{unique}", stamp=first).json()["status"] == "accepted"
    assert post(f"k-{unique}").json()["status"] == "duplicate"
    records = FirestoreRecords(emulator_db(config))
    wait_for(lambda: records.count(customer, RecordKind.CLAIMS) == 2, timeout=60)
    lines = sorted(records.list(customer, RecordKind.CLAIMS), key=lambda d: d["line"])
    assert [d["outcome"] for d in lines] == ["DENIED", "PAID"]
    assert lines[0]["carc_codes"] == ["197"] and lines[0]["source"] == "fhir"
    # the same bytes signed again under a new event id are a replay (issue 16): duplicate
    assert post(f"k-replayed-{unique}", stamp=first).json()["status"] == "duplicate"
    # the same resource as a new event, signed anew, is accepted and changes nothing downstream
    assert post(f"k2-{unique}", later=2).json()["status"] == "accepted"
    aggregates = FirestoreAggregates(emulator_db(config))
    wait_for(lambda: aggregates.lines_aggregated(customer) == 2, timeout=60)
    assert records.count(customer, RecordKind.CLAIMS) == 2


def test_an_outcome_before_its_claim_is_joined_when_the_claim_comes(
        clean_stack: StackConfig, unique: str) -> None:
    from upstream.adapters.firestore_ehr import FirestoreEhrRecords

    ehr = FirestoreEhrRecords(emulator_db(clean_stack))
    customer = f"order-{unique}"
    assert ehr.apply_outcome(customer, "C1", "L1", {
        "outcome": "DENIED", "carc_codes": ["16"], "paid_cents": 0}) == []
    line = {"customer_id": customer, "claim_id": "C1", "line_key": "L1", "line": 1,
            "payer": "Aetna", "cpt": "97153", "outcome": "PENDING",
            "updated_at": "2026-01-02T00:00:00Z"}
    ((_, stored),) = ehr.upsert_lines(customer, [line])
    assert stored["outcome"] == "DENIED" and stored["carc_codes"] == ["16"]
    older = {**line, "updated_at": "2026-01-01T00:00:00Z", "cpt": "97155"}
    assert ehr.upsert_lines(customer, [older]) == []  # an older version never overwrites


def _athena_bundle(claims: dict[str, str], topic: str = "Claim.update") -> bytes:
    """A notification naming athenaOne claims: event id → claim id."""
    return json.dumps({"resourceType": "Bundle", "type": "history", "entry": [{"resource": {
        "resourceType": "SubscriptionStatus", "type": "event-notification",
        "subscription": {"reference": "Subscription/claims-1"},
        "topic": f"https://athenahealth.com/fhir/topic/{topic}",
        "notificationEvent": [{"id": event, "eventNumber": str(i),
                               "timestamp": datetime.now(UTC).isoformat(),
                               "focus": {"identifier": {
                                   "system": "urn:athenahealth:athenanet:claim",
                                   "value": f"a-195900.claim-{claim}"}}}
                              for i, (event, claim) in enumerate(claims.items())]}}]}).encode()


def test_athena_id_only_events_are_fetched_from_athenaone_and_land_once(
        clean_stack: StackConfig, unique: str) -> None:
    """Signed notification → `ehr-events` → fhir_mapper → `ehr-fetch` → ehr_fetcher → the
    fake athenaOne (token, claim, insurances, referral authorizations over HTTP) → lines and
    authorizations in Firestore → `claims` → aggregates. A replay publishes nothing; an
    unknown claim ends `not_found`; a delete voids."""
    from tests.conftest import wait_for
    from upstream.adapters.firestore_aggregates import FirestoreAggregates
    from upstream.adapters.firestore_store import FirestoreRecords
    from upstream.domain.records import RecordKind
    from upstream.services.tenants import athena_oauth_secret, patient_key_secret

    config = clean_stack
    customer = f"athena-{unique}"
    store = LocalFileSecretStore(config.secrets_file)
    store.put(athena_secret(customer), SECRET)
    store.put(patient_key_secret(customer), b"p" * 32)
    store.put(athena_oauth_secret(customer), json.dumps(
        {"client_id": f"local-{unique}", "client_secret": "shh"}).encode())
    db = emulator_db(config)
    FirestoreTenants(db).upsert(customer, {"athena_practice_id": "195900"})
    url = manager.function_urls(config)["athena_webhook"] + f"/{customer}"

    def post(body: bytes) -> dict[str, object]:
        answer = requests.post(url, data=body, timeout=10,
                               headers={"X-Hub-Signature": sign(body)})
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    body = _athena_bundle({f"e1-{unique}": "30001", f"e2-{unique}": "30003",
                           f"e3-{unique}": "424242"})
    assert post(body)["events"] == 3
    assert post(body)["status"] == "duplicate"
    records = FirestoreRecords(db)
    wait_for(lambda: records.count(customer, RecordKind.CLAIMS) == 5, timeout=90)
    pending = db.collection("customers", customer, "ehr_pending")
    wait_for(lambda: sorted((d.to_dict() or {})["status"] for d in pending.stream()) == [
        "fetched", "fetched", "not_found"], timeout=60)
    lines = records.list(customer, RecordKind.CLAIMS)
    assert {d["payer"] for d in lines} <= {"UnitedHealthcare", "Aetna", "Blue Cross Blue Shield",
                                          "Cigna"}
    assert all(d["patient_key"] and not str(d["patient_key"]).isdigit() for d in lines)
    aggregates = FirestoreAggregates(db)
    wait_for(lambda: aggregates.lines_aggregated(customer) == 5, timeout=60)
    # patient 7101's athenaOne authorizations (`referralauths`) came with claim 30001
    stored = {a["authorization_number"]: a for a in records.authorizations(customer)}
    assert set(stored) == {"UHC-ABA-7101", "MCD-7101-OLD"}
    assert (stored["UHC-ABA-7101"]["end_date"], stored["UHC-ABA-7101"]["units_used"]) == (
        "2026-12-10", 34.0)
    assert records.authorizations(f"other-{unique}") == []

    post(_athena_bundle({f"e4-{unique}": "30001"}, topic="Claim.delete"))
    wait_for(lambda: sum(d["outcome"] == "VOID" for d in records.list(
        customer, RecordKind.CLAIMS)) == 2, timeout=60)
    assert records.count(customer, RecordKind.CLAIMS) == 5  # voided, never deleted


def test_an_ehr_prior_authorization_merges_into_the_stored_authorization(
        clean_stack: StackConfig, unique: str) -> None:
    """A CSV's units used stay; a newer response wins; an older one arriving late does not."""
    from upstream.adapters.firestore_ehr import FirestoreEhrRecords
    from upstream.adapters.firestore_store import FirestoreRecords

    db = emulator_db(clean_stack)
    ehr, customer = FirestoreEhrRecords(db), f"pa-{unique}"
    csv_doc = {"authorization_number": "PA-1", "payer": "Aetna", "payer_raw": "Aetna",
               "customer_id": customer, "start_date": "2026-01-01", "end_date": "2026-03-31",
               "units_authorized": 100.0, "units_used": 30.0, "source": "csv",
               "updated_at": "2026-01-02T00:00:00+00:00"}
    assert ehr.upsert_authorizations(customer, [csv_doc]) == 1
    newer = {**csv_doc, "end_date": "2026-06-30", "units_authorized": 160.0,
             "units_used": None, "source": "fhir", "updated_at": "2026-02-01T00:00:00+00:00"}
    older = {**newer, "end_date": "2026-02-28", "updated_at": "2026-01-15T00:00:00+00:00"}
    assert ehr.upsert_authorizations(customer, [newer]) == 1
    assert ehr.upsert_authorizations(customer, [older]) == 0
    (stored,) = FirestoreRecords(db).authorizations(customer)
    assert (stored["end_date"], stored["units_authorized"], stored["units_used"]) == (
        "2026-06-30", 160.0, 30.0)
    assert FirestoreRecords(db).authorizations(f"other-{unique}") == []


def test_a_claimed_key_is_stored_as_the_library_would_store_it(clean_stack: StackConfig,
                                                               unique: str) -> None:
    """The claim's create is a hand-built Commit (`lean_grpc`): the document it leaves must
    read back exactly like one `DocumentReference.create` would, and a concurrent claim of
    the same key must still lose."""
    db = emulator_db(clean_stack)
    keys, rival = FirestoreIdempotency(db), FirestoreIdempotency(db)
    now = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)
    assert keys.claim(f"stored-{unique}", now + timedelta(days=8), now)
    assert not rival.claim(f"stored-{unique}", now + timedelta(days=8), now)
    stored = [snap.to_dict() or {} for snap in db.collection("idempotency").stream()
              if snap.id == keys._ref(f"stored-{unique}").id]
    assert [{k: v for k, v in doc.items() if k != "claim"} for doc in stored] \
        == [{"expire_at": now + timedelta(days=8), "created_at": now}]
    assert len(stored[0]["claim"]) == 32


def test_a_claim_whose_committed_create_lost_its_answer_still_holds_the_key(
        clean_stack: StackConfig, unique: str) -> None:
    """The create is retried on UNAVAILABLE. When the first attempt was committed and only its
    answer lost, the retry meets ALREADY_EXISTS: the claim must still win (its own token is
    stored), or the event is answered "duplicate" and never published. A later delivery of
    the same key, with another token, is still a duplicate."""
    db = emulator_db(clean_stack)
    first, later = FirestoreIdempotency(db, lambda: "a" * 32), FirestoreIdempotency(db)
    now = datetime.now(UTC)
    # The first attempt's commit, as the server applied it before the answer was lost.
    first._create(first._ref(f"lost-{unique}"), now + timedelta(days=8), now, "a" * 32)
    assert first.claim(f"lost-{unique}", now + timedelta(days=8), now)
    assert not later.claim(f"lost-{unique}", now + timedelta(days=8), now)
