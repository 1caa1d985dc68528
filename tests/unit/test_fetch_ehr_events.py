"""The ehr_fetcher use-case with fakes for storage and athenaOne (the real client is proven
against the fake API in test_athena_api, the whole path on the stack in tests/integration)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.fakes import FakePublisher, FakeSecrets, FakeTenants
from tests.unit.test_detector_runs import Event
from upstream.adapters.athena_api import AthenaUnavailable
from upstream.services.fetch_ehr_events import (
    AthenaFetch,
    FetcherDeps,
    MissingCredentials,
    handle_fetch_event,
)
from upstream.services.tenants import athena_oauth_secret, patient_key_secret
from upstream.stack.fake_athena import FIXTURES

NOW = datetime(2026, 11, 20, tzinfo=UTC)
PRACTICE = json.loads(FIXTURES.read_text())["practices"]["195900"]
FOCUS = "urn:athenahealth:athenanet:claim:a-195900.claim-{}"


class Records:
    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self.voided: list[str] = []
        self.events: dict[str, tuple[str, dict[str, Any]]] = {}
        self.authorizations: list[dict[str, Any]] = []

    def upsert_lines(self, customer_id: str, documents: Any) -> list[tuple[str, dict[str, Any]]]:
        self.lines += documents
        return [(f"d{i}", {**d, "content_hash": "h"}) for i, d in enumerate(documents)]

    def apply_outcome(self, customer_id: str, claim_id: str, line_key: str,
                      fields: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        self.voided.append(claim_id)
        return [("d0", {"claim_id": claim_id, **fields, "content_hash": "v"})]

    def upsert_authorizations(self, customer_id: str, documents: Any) -> int:
        self.authorizations += documents
        return len(documents)

    def mark_event(self, customer_id: str, event_id: str, status: str,
                   detail: dict[str, Any]) -> None:
        self.events[event_id] = (status, detail)


class Source:
    def __init__(self, fail: Exception | None = None,
                 fail_referrals: Exception | None = None) -> None:
        self.fail = fail
        self.fail_referrals = fail_referrals
        self.calls: list[str] = []

    def claim(self, practice_id: str, claim_id: str) -> dict[str, Any] | None:
        self.calls.append(claim_id)
        if self.fail:
            raise self.fail
        return PRACTICE["claims"].get(claim_id)

    def patient_insurances(self, practice_id: str, patient_id: str) -> list[dict[str, Any]]:
        return list(PRACTICE["patients"].get(patient_id, {}).get("insurances", []))

    def referral_auths(self, practice_id: str, patient_id: str) -> list[dict[str, Any]]:
        self.calls.append(f"referralauths/{patient_id}")
        if self.fail_referrals:
            raise self.fail_referrals
        return list(PRACTICE["patients"].get(patient_id, {}).get("referralauths", []))


def deps(source: Source | None = None, credentials: bytes | None = b'{"client_id": "c", '
         b'"client_secret": "s"}') -> tuple[FetcherDeps, Records, FakePublisher]:
    records, publisher = Records(), FakePublisher()
    secrets = {patient_key_secret("acme"): b"k" * 32}
    if credentials is not None:
        secrets[athena_oauth_secret("acme")] = credentials
    chosen = source or Source()
    return FetcherDeps(
        tenants=FakeTenants({"acme": {"status": "active", "athena_practice_id": "195900"}}),
        secrets=FakeSecrets(secrets), records=records, publisher=publisher,
        sources=lambda customer, creds: chosen, fetch_topic="ehr-fetch",
        claims_topic="claims"), records, publisher


def fetch(event_id: str, focus: str | None, topic: str | None = None,
          customer: str = "acme") -> Event:
    return Event(AthenaFetch(customer_id=customer, event_id=event_id, focus=focus, topic=topic,
                             timestamp=NOW.isoformat(), received_at=NOW).to_bytes())


def test_a_claim_is_fetched_mapped_stored_and_announced() -> None:
    d, records, publisher = deps()
    result = handle_fetch_event(fetch("e1", FOCUS.format("30003")), d)
    assert result["status"] == "fetched" and result["written"] == 3
    assert {line["claim_id"] for line in records.lines} == {"30003"}
    assert records.events["e1"][0] == "fetched"
    ((topic, data, _),) = publisher.messages
    assert topic == "claims" and json.loads(data)["upload_id"] == "athena:e1"


def test_a_reference_focus_uses_the_tenants_practice() -> None:
    d, records, _ = deps()
    assert handle_fetch_event(fetch("e2", "Claim/30001"), d)["status"] == "fetched"
    assert {line["claim_id"] for line in records.lines} == {"30001"}


@pytest.mark.parametrize("focus, status", [
    (FOCUS.format("424242"), "not_found"),
    ("urn:athenahealth:athenanet:encounter:a-195900.E-1", "not_a_claim"),
    (None, "not_a_claim"),
])
def test_answers_no_retry_changes_end_the_event_with_a_status(focus: str | None,
                                                              status: str) -> None:
    d, records, publisher = deps()
    assert handle_fetch_event(fetch("e3", focus), d)["status"] == status
    assert records.events["e3"][0] == status and publisher.messages == []


def test_a_delete_voids_the_lines_without_calling_athena() -> None:
    source = Source()
    d, records, publisher = deps(source)
    result = handle_fetch_event(fetch("e4", FOCUS.format("30001"),
                                      "https://athenahealth.com/fhir/topic/Claim.delete"), d)
    assert result["status"] == "voided" and records.voided == ["30001"]
    assert source.calls == [] and len(publisher.messages) == 1


def test_an_unmappable_claim_is_marked_with_its_reasons() -> None:
    source = Source()
    d, records, _ = deps(source)
    PRACTICE["claims"]["1"] = {"claimid": 1, "procedures": []}
    try:
        result = handle_fetch_event(fetch("e5", FOCUS.format("1")), d)
    finally:
        del PRACTICE["claims"]["1"]
    assert result["status"] == "unmappable" and "no_procedures" in result["issues"][0]
    assert records.events["e5"][0] == "unmappable" and records.lines == []


@pytest.mark.parametrize("make, error", [
    (lambda: deps(Source(AthenaUnavailable("down"))), AthenaUnavailable),
    (lambda: deps(credentials=None), MissingCredentials),
    (lambda: deps(credentials=b"not json"), MissingCredentials),
])
def test_what_a_retry_may_fix_raises_for_pubsub_to_redeliver(make: Any,
                                                              error: type[Exception]) -> None:
    d, records, _ = make()
    with pytest.raises(error):
        handle_fetch_event(fetch("e6", FOCUS.format("30001")), d)
    assert "e6" not in records.events


def test_unknown_tenant_raises_and_garbage_is_dead_lettered() -> None:
    d, _, publisher = deps()
    with pytest.raises(LookupError):
        handle_fetch_event(fetch("e7", FOCUS.format("30001"), customer="nobody"), d)
    assert handle_fetch_event(Event(b"{not json"), d)["status"] == "dead_lettered"
    assert publisher.messages[0][0] == "ehr-fetch-dlq"


def test_the_patients_athena_authorizations_are_stored_with_the_claim() -> None:
    d, records, _ = deps()
    result = handle_fetch_event(fetch("e8", FOCUS.format("30001")), d)  # patient 7101
    assert result["authorizations"] == 2
    assert {a["authorization_number"] for a in records.authorizations} == {
        "UHC-ABA-7101", "MCD-7101-OLD"}
    assert all(a["patient_key"] != "7101" for a in records.authorizations)
    d, records, _ = deps()
    result = handle_fetch_event(fetch("e9", FOCUS.format("30002")), d)  # patient 7102
    assert result["authorizations"] == 1
    assert any("authorization_without_period" in i for i in result["issues"])


def test_authorizations_failing_to_load_write_nothing_and_retry_the_event() -> None:
    d, records, publisher = deps(Source(fail_referrals=AthenaUnavailable("busy")))
    with pytest.raises(AthenaUnavailable):
        handle_fetch_event(fetch("e10", FOCUS.format("30001")), d)
    assert records.lines == [] and records.authorizations == [] and publisher.messages == []


@pytest.mark.parametrize("patient", ["../../claims/1", True, {"id": 1}, "7 1", "x" * 41])
def test_a_patient_id_that_is_not_a_plain_id_is_never_put_in_a_path(patient: Any) -> None:
    source = Source()
    d, _, _ = deps(source)
    PRACTICE["claims"]["2"] = {**PRACTICE["claims"]["30001"], "claimid": 2,
                               "patientid": patient}
    try:
        result = handle_fetch_event(fetch("e11", FOCUS.format("2")), d)
    finally:
        del PRACTICE["claims"]["2"]
    assert source.calls == ["2"] and result["authorizations"] == 0
