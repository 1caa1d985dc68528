"""Webhook authentication and notification parsing (pure), and the receivers with fakes."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes import FakePublisher, FakeSecrets, FakeTenants
from upstream.domain.webhooks import (
    MAX_BODY_BYTES,
    BadNotification,
    parse_notification,
    verify_ehr_signature,
    verify_hub_signature,
)
from upstream.services.tenants import athena_secret, webhook_secret
from upstream.services.webhooks import PROBLEM, WebhookDeps, receive_athena, receive_ehr

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SECRET, OLD = b"s" * 32, b"o" * 32


def sign(body: bytes, secret: bytes = SECRET) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def r4b_bundle(*event_ids: str, practice: str = "195900") -> bytes:
    return json.dumps({"resourceType": "Bundle", "type": "history", "entry": [{"resource": {
        "resourceType": "SubscriptionStatus", "type": "event-notification",
        "subscription": {"reference": "Subscription/claims-1"},
        "topic": "https://athenahealth.com/fhir/topic/Claim.update",
        "notificationEvent": [{"id": e, "eventNumber": str(i), "timestamp": NOW.isoformat(),
                               "focus": {"identifier": {
                                   "system": "urn:athenahealth:athenanet:claim",
                                   "value": f"a-{practice}.Claim-{i}"}}}
                              for i, e in enumerate(event_ids)]}}]}).encode()


def r4_bundle(*numbers: str) -> bytes:
    return json.dumps({"resourceType": "Bundle", "type": "history", "entry": [{"resource": {
        "resourceType": "Parameters", "parameter": [
            {"name": "subscription", "valueReference": {"reference": "Subscription/s9"}},
            {"name": "topic", "valueCanonical": "https://athenahealth.com/fhir/topic/Claim"},
            *[{"name": "notification-event", "part": [
                {"name": "event-number", "valueString": n},
                {"name": "timestamp", "valueInstant": NOW.isoformat()},
                {"name": "focus", "valueReference": {"reference": f"Claim/{n}"}}]}
              for n in numbers]]}}]}).encode()


# --- pure --------------------------------------------------------------------------------

def test_hub_signature_verifies_on_the_raw_bytes_with_old_and_new_secret() -> None:
    body = r4b_bundle("e1")
    assert verify_hub_signature(body, sign(body), [SECRET])
    assert verify_hub_signature(body, sign(body, OLD), [SECRET, OLD])  # during a rotation
    assert not verify_hub_signature(body, sign(body, OLD), [SECRET])  # after it
    assert not verify_hub_signature(body + b" ", sign(body), [SECRET])
    assert not verify_hub_signature(body, sign(body).removeprefix("sha256="), [SECRET])
    assert not verify_hub_signature(body, None, [SECRET])
    assert not verify_hub_signature(body, sign(body), [])
    assert verify_hub_signature(body, sign(body).upper().replace("SHA256=", "sha256="), [SECRET])


def test_ehr_signature_covers_the_timestamp_and_refuses_replays() -> None:
    body = b'{"resourceType": "Claim"}'
    stamp = str(int(NOW.timestamp()))
    good = sign(stamp.encode() + b"." + body)
    assert verify_ehr_signature(body, stamp, good, [SECRET], NOW)
    assert verify_ehr_signature(body, stamp, good, [SECRET], NOW + timedelta(seconds=299))
    assert not verify_ehr_signature(body, stamp, good, [SECRET], NOW + timedelta(seconds=301))
    assert not verify_ehr_signature(body, str(int(NOW.timestamp()) + 1), good, [SECRET], NOW)
    iso = NOW.isoformat()
    assert verify_ehr_signature(body, iso, sign(iso.encode() + b"." + body), [SECRET], NOW)
    assert not verify_ehr_signature(body, "yesterday", good, [SECRET], NOW)


def test_r4b_and_r4_backport_notifications_parse_to_events() -> None:
    status = parse_notification(r4b_bundle("e1", "e2"))
    assert [e.event_id for e in status.events] == ["e1", "e2"]
    assert status.practice_ids() == {"195900"}
    params = parse_notification(r4_bundle("7", "8"))
    assert [e.event_id for e in params.events] == ["Subscription/s9#7", "Subscription/s9#8"]
    assert params.events[0].focus == "Claim/7"


@pytest.mark.parametrize(("body", "reason"), [
    (b"", "invalid_json"), (b"\xff\xfe", "invalid_json"), (b"[1, 2]", "invalid_json"),
    (b'{"resourceType": "Claim"}', "not_a_notification"),
    (b'{"resourceType": "Bundle", "type": "history", "entry": []}', "not_a_notification"),
    (b'{"resourceType": "Bundle", "type": "history", "entry": [{"resource": {"resourceType":'
     b' "Patient"}}]}', "not_a_notification"),
    (b'{"resourceType": "Bundle", "type": "history", "entry": [{"resource": {"resourceType":'
     b' "SubscriptionStatus", "notificationEvent": [{"timestamp": "x"}]}}]}',
     "missing_event_id")])
def test_malformed_notifications_have_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(BadNotification) as caught:
        parse_notification(body)
    assert caught.value.reason == reason


@settings(max_examples=200)
@given(st.one_of(st.binary(max_size=300), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["resourceType", "type", "entry", "resource", "notificationEvent",
                         "parameter", "part", "name", "id", "focus"]), inner, max_size=4),
    max_leaves=20).map(lambda v: json.dumps(v).encode())))
def test_any_body_either_parses_or_is_a_bad_notification(body: bytes) -> None:
    try:
        parse_notification(body)
    except BadNotification:
        pass


# --- receivers with fakes ------------------------------------------------------------------

class MemoryKeys:
    def __init__(self) -> None:
        self.keys: dict[str, datetime] = {}

    def claim(self, key: str, expire_at: datetime, now: datetime) -> bool:
        key.encode()  # as the Firestore adapter does to name the document: text must encode
        if key in self.keys and self.keys[key] > now:
            return False
        self.keys[key] = expire_at
        return True

    def release(self, key: str) -> None:
        self.keys.pop(key, None)


def deps(**tenant: Any) -> WebhookDeps:
    secrets = FakeSecrets({athena_secret("acme"): SECRET, webhook_secret("acme"): SECRET})
    return WebhookDeps(tenants=FakeTenants({"acme": {"status": "active", **tenant},
                                            "gone": {"status": "disabled"}}),
                       secrets=secrets, idempotency=MemoryKeys(), publisher=FakePublisher(),
                       ehr_topic="ehr-events", clock=lambda: NOW)


def test_athena_accepts_once_then_answers_duplicate() -> None:
    d = deps(athena_practice_id="195900")
    body = r4b_bundle("e1", "e2")
    first = receive_athena("acme", body, {"X-Hub-Signature": sign(body)}, d)
    assert (first.status, first.body["status"], first.body["events"]) == (200, "accepted", 2)
    again = receive_athena("acme", body, {"x-hub-signature": sign(body)}, d)
    assert (again.status, again.body["status"]) == (200, "duplicate")
    partly = r4b_bundle("e2", "e3")
    third = receive_athena("acme", partly, {"X-Hub-Signature": sign(partly)}, d)
    assert third.body == {"status": "accepted", "events": 1, "duplicates": 1}
    published = [json.loads(data) for _, data, _ in d.publisher.messages]  # type: ignore[attr-defined]
    assert [[e["event_id"] for e in m["events"]] for m in published] == [["e1", "e2"], ["e3"]]


def test_every_authentication_failure_gets_the_same_answer() -> None:
    d = deps(athena_practice_id="195900")
    body = r4b_bundle("e1")
    other_practice = r4b_bundle("e9", practice="999")
    answers = [
        receive_athena("nobody", body, {"X-Hub-Signature": sign(body)}, d),
        receive_athena("gone", body, {"X-Hub-Signature": sign(body)}, d),
        receive_athena("../acme", body, {"X-Hub-Signature": sign(body)}, d),
        receive_athena("acme", body, {}, d),
        receive_athena("acme", body, {"X-Hub-Signature": sign(body, OLD)}, d),
        receive_athena("acme", other_practice, {"X-Hub-Signature": sign(other_practice)}, d),
        receive_ehr(b"{}", {"X-Customer-ID": "acme"}, d)]
    assert {a.status for a in answers} == {401}
    assert len({json.dumps(a.body) for a in answers}) == 1
    assert d.publisher.messages == []  # type: ignore[attr-defined]


def test_malformed_and_oversized_bodies() -> None:
    d = deps()
    bad = b'{"resourceType": "Bundle", "type": "searchset", "entry": []}'
    answer = receive_athena("acme", bad, {"X-Hub-Signature": sign(bad)}, d)
    assert answer.status == 400 and answer.content_type == "application/problem+json"
    assert answer.body["type"].endswith("not-a-notification")
    huge = b" " * (MAX_BODY_BYTES + 1)
    assert receive_athena("acme", huge, {"X-Hub-Signature": sign(huge)}, d).status == 413
    assert receive_ehr(huge, {}, d).status == 413


def test_a_handshake_without_events_is_accepted_and_publishes_nothing() -> None:
    d = deps()
    body = r4b_bundle()
    assert receive_athena("acme", body, {"X-Hub-Signature": sign(body)}, d).body["events"] == 0
    assert d.publisher.messages == []  # type: ignore[attr-defined]


def test_a_publish_failure_answers_503_and_releases_the_keys() -> None:
    d = deps()
    d.publisher.fail_on_call = 0  # type: ignore[attr-defined]
    body = r4b_bundle("e1")
    answer = receive_athena("acme", body, {"X-Hub-Signature": sign(body)}, d)
    assert answer.status == 503 and answer.headers["Retry-After"]
    retry = receive_athena("acme", body, {"X-Hub-Signature": sign(body)}, d)
    assert retry.body["status"] == "accepted"  # the key was released, the retry publishes


def ehr_headers(body: bytes, key: str = "evt-1", when: datetime = NOW) -> dict[str, str]:
    stamp = str(int(when.timestamp()))
    return {"X-Customer-ID": "acme", "X-Idempotency-Key": key, "X-Timestamp": stamp,
            "X-Signature": sign(stamp.encode() + b"." + body)}


def test_ehr_accepts_a_signed_resource_once() -> None:
    d = deps()
    body = json.dumps({"resourceType": "Claim", "id": "c1"}).encode()
    assert receive_ehr(body, ehr_headers(body), d).body["status"] == "accepted"
    assert receive_ehr(body, ehr_headers(body), d).body["status"] == "duplicate"
    (message,) = [json.loads(m[1]) for m in d.publisher.messages]  # type: ignore[attr-defined]
    assert message["resource_type"] == "Claim" and message["source"] == "ehr"


def test_ehr_refuses_stale_unsupported_and_keyless_requests() -> None:
    d = deps()
    body = b'{"resourceType": "Patient"}'
    stale = receive_ehr(body, ehr_headers(body, when=NOW - timedelta(minutes=6)), d)
    assert stale.status == 401
    future = receive_ehr(body, ehr_headers(body, when=NOW + timedelta(minutes=6)), d)
    assert future.status == 401
    ignored = receive_ehr(body, ehr_headers(body), d)  # FHIR we do not map: accepted, ignored
    assert (ignored.status, ignored.body["status"]) == (200, "ignored")
    not_fhir = b'{"hello": "world"}'
    assert receive_ehr(not_fhir, ehr_headers(not_fhir), d).status == 400
    assert d.publisher.messages == []  # type: ignore[attr-defined]
    claim = b'{"resourceType": "Claim"}'
    assert receive_ehr(claim, ehr_headers(claim, key=""), d).status == 400
    assert receive_ehr(claim, ehr_headers(claim, key="k" * 201), d).status == 400


@settings(max_examples=150)
@given(body=st.binary(max_size=400),
       headers=st.dictionaries(st.sampled_from(["X-Hub-Signature", "X-Customer-ID",
                                                "X-Timestamp", "X-Signature",
                                                "X-Idempotency-Key"]),
                               st.text(max_size=80), max_size=5),
       customer=st.text(max_size=20), signed=st.booleans())
def test_no_input_gets_a_5xx(body: bytes, headers: dict[str, str], customer: str,
                             signed: bool) -> None:
    d = deps()
    if signed:
        headers = {**headers, "X-Hub-Signature": sign(body)}
    assert receive_athena(customer or "acme", body, headers, d).status < 500
    assert receive_ehr(body, headers, d).status < 500


HOSTILE_BODIES = {
    "deep": b'{"resourceType": "Claim", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "deep_but_parseable": b'{"resourceType": "Claim", "x": ' + b"[" * 500 + b"]" * 500 + b"}",
    "big_integer": b'{"resourceType": "Claim", "total": ' + b"9" * 100_000 + b"}",
    "surrogate": b'{"resourceType": "Claim", "id": "\\ud800"}',
    "nan": b'{"resourceType": "Claim", "total": NaN}',
}


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_signed_hostile_json_is_a_400_in_both_receivers(name: str) -> None:
    body = HOSTILE_BODIES[name]
    d = deps()
    answer = receive_ehr(body, ehr_headers(body), d)
    assert (answer.status, answer.content_type) == (400, PROBLEM), name
    athena = body.replace(b'"resourceType": "Claim"', b'"resourceType": "Bundle"')
    assert receive_athena("acme", athena, {"X-Hub-Signature": sign(athena)}, d).status == 400
    assert d.publisher.messages == []  # type: ignore[attr-defined]


def test_an_athena_event_id_with_a_lone_surrogate_is_a_400() -> None:
    body = r4b_bundle("e1").replace(b'"id": "e1"', b'"id": "\\udc80"')
    answer = receive_athena("acme", body, {"X-Hub-Signature": sign(body)}, deps())
    assert answer.status == 400


def test_a_replay_under_a_new_idempotency_key_is_a_duplicate() -> None:
    """The event key is not signed: a captured request re-sent within the 5-minute window
    with another key must not publish again."""
    d = deps()
    body = json.dumps({"resourceType": "Claim", "id": "c1"}).encode()
    headers = ehr_headers(body, key="evt-1")
    assert receive_ehr(body, headers, d).body["status"] == "accepted"
    replay = {**headers, "X-Idempotency-Key": "evt-attacker"}
    assert receive_ehr(body, replay, d).body["status"] == "duplicate"
    assert len(d.publisher.messages) == 1  # type: ignore[attr-defined]
    # the sender's own retry, re-signed a second later, is still one event
    later = ehr_headers(body, key="evt-1", when=NOW + timedelta(seconds=1))
    assert receive_ehr(body, later, d).body["status"] == "duplicate"
    assert len(d.publisher.messages) == 1  # type: ignore[attr-defined]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=30)


@settings(max_examples=150)
@given(value=_JSON, kind=st.sampled_from(["Claim", "Bundle", "Coverage", None]),
       depth=st.integers(0, 2000))
def test_no_signed_json_gets_a_5xx(value: Any, kind: str | None, depth: int) -> None:
    body = json.dumps({"resourceType": kind, "x": value}).encode()
    body = body[:-1] + b', "deep": ' + b"[" * depth + b"]" * depth + b"}"
    d = deps()
    assert receive_ehr(body, ehr_headers(body), d).status < 500
    assert receive_athena("acme", body, {"X-Hub-Signature": sign(body)}, d).status < 500


def test_the_local_secret_store_keeps_the_replaced_version_valid(tmp_path: Any) -> None:
    from upstream.adapters.secrets import LocalFileSecretStore

    store = LocalFileSecretStore(tmp_path / "secrets.json")
    assert store.get_recent("webhook-secret-acme") == []
    store.put("webhook-secret-acme", OLD)
    store.put("webhook-secret-acme", SECRET)
    assert store.get("webhook-secret-acme") == SECRET
    assert store.get_recent("webhook-secret-acme") == [SECRET, OLD]
    store.put("webhook-secret-acme", b"n" * 32)
    assert store.get_recent("webhook-secret-acme") == [b"n" * 32, SECRET]  # OLD retired


def test_a_noisy_tenant_is_rate_limited_with_retry_after_and_others_are_not() -> None:
    from dataclasses import replace

    from upstream.domain.rate_limit import RateLimiter

    # a frozen clock: no token comes back during the test, however slow the machine
    d = replace(deps(webhook_rate_per_second=1, webhook_burst=3),
                limiter=RateLimiter(300, 600, lambda: 0.0))
    answers = [receive_athena("acme", body, {"X-Hub-Signature": sign(body)}, d).status
               for body in (r4b_bundle(f"r{i}") for i in range(5))]
    assert answers == [200, 200, 200, 429, 429]
    limited = receive_athena("acme", r4b_bundle("r9"), {"X-Hub-Signature": sign(
        r4b_bundle("r9"))}, d)
    assert limited.headers["Retry-After"] == "1" and limited.content_type == PROBLEM
    # a refused signature never spends the tenant's budget, and other tenants have their own
    assert receive_athena("acme", b"{}", {"X-Hub-Signature": "sha256=00"}, d).status == 401


@given(st.lists(st.floats(0, 2), min_size=1, max_size=200), st.floats(0.5, 50),
       st.integers(1, 20))
def test_token_bucket_never_allows_more_than_burst_plus_rate_times_time(
        gaps: list[float], rate: float, burst: int) -> None:
    from upstream.domain.rate_limit import RateLimiter

    now = [0.0]
    limiter = RateLimiter(rate, burst, lambda: now[0])
    allowed = 0
    for gap in gaps:
        now[0] += gap
        waited = limiter.take("t")
        allowed += waited == 0
        assert waited == 0 or waited >= 1
    assert allowed <= burst + rate * now[0] + 1e-9
