"""The fhir_mapper use-case with fakes for its callers (storage is proven on the emulators)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.fakes import FakePublisher, FakeSecrets, FakeTenants
from tests.unit.test_detector_runs import Event
from tests.unit.test_fhir_map import eob
from upstream.services.map_ehr_events import MapperDeps, handle_ehr_event
from upstream.services.tenants import patient_key_secret
from upstream.services.webhooks import EhrEvent

NOW = datetime(2026, 3, 2, tzinfo=UTC)


class Records:
    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self.held: list[dict[str, Any]] = []

    def upsert_lines(self, customer_id: str, documents: Any) -> list[tuple[str, dict[str, Any]]]:
        self.lines += documents
        return [(f"d{i}", {**d, "content_hash": "h"}) for i, d in enumerate(documents)]

    def apply_outcome(self, customer_id: str, claim_id: str, line_key: str,
                      fields: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        return []

    def hold_event(self, customer_id: str, event: dict[str, Any], received_at: datetime) -> None:
        self.held.append(event)

    def upsert_authorizations(self, customer_id: str, documents: Any) -> int:
        self.authorizations = [*getattr(self, "authorizations", []), *documents]
        return len(documents)


def deps() -> tuple[MapperDeps, Records, FakePublisher]:
    records, publisher = Records(), FakePublisher()
    return MapperDeps(tenants=FakeTenants({"acme": {"status": "active"}}),
                      secrets=FakeSecrets({patient_key_secret("acme"): b"k" * 32}),
                      records=records, publisher=publisher, ehr_topic="ehr-events",
                      claims_topic="claims"), records, publisher


def test_a_full_resource_becomes_lines_and_one_change_message() -> None:
    d, records, publisher = deps()
    message = EhrEvent(source="ehr", customer_id="acme", received_at=NOW,
                       events=[{"event_id": "e1"}], resource_type="ExplanationOfBenefit",
                       resource_b64=base64.b64encode(json.dumps(eob()).encode()).decode())
    result = handle_ehr_event(Event(message.to_bytes()), d)
    assert result["written"] == 2 and len(records.lines) == 2
    ((topic, data, _),) = publisher.messages
    assert topic == "claims" and len(json.loads(data)["changes"]) == 2


def test_athena_id_only_events_are_kept_and_sent_to_the_fetcher_one_by_one() -> None:
    d, records, publisher = deps()
    message = EhrEvent(source="athena", customer_id="acme", received_at=NOW,
                       events=[{"event_id": "a1", "focus": "Claim/1"}, {"event_id": "a2"}])
    assert handle_ehr_event(Event(message.to_bytes()), d)["status"] == "sent_to_fetcher"
    assert [e["event_id"] for e in records.held] == ["a1", "a2"]
    sent = [json.loads(data) for topic, data, _ in publisher.messages if topic == "ehr-fetch"]
    assert [(m["event_id"], m["focus"]) for m in sent] == [("a1", "Claim/1"), ("a2", None)]


def test_a_malformed_event_is_dead_lettered_and_an_unknown_tenant_retried() -> None:
    d, _, publisher = deps()
    assert handle_ehr_event(Event(b"{}"), d)["status"] == "dead_lettered"
    assert publisher.messages[0][0] == "ehr-events-dlq"
    stranger = EhrEvent(source="ehr", customer_id="nobody", received_at=NOW,
                        resource_b64=base64.b64encode(b"{}").decode())
    with pytest.raises(LookupError):
        handle_ehr_event(Event(stranger.to_bytes()), d)


def test_an_undecodable_resource_is_reported_not_raised() -> None:
    d, records, _ = deps()
    message = EhrEvent(source="ehr", customer_id="acme", received_at=NOW,
                       resource_b64=base64.b64encode(b"not json").decode())
    result = handle_ehr_event(Event(message.to_bytes()), d)
    assert result["issues"] == ["not_fhir"] and records.lines == []


def pas_response(**changes: Any) -> dict[str, Any]:
    """A Da Vinci PAS-style answer to a prior-authorization request: approved, with the
    reference number and period, for 97153 (40 units) and 97155 (8 units)."""
    base = {"resourceType": "ClaimResponse", "id": "pas-1", "status": "active",
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type",
                                 "code": "professional"}]},
            "use": "preauthorization", "patient": {"reference": "Patient/MRN-77"},
            "created": "2026-01-05", "insurer": {"display": "UHC"}, "outcome": "complete",
            "request": {"reference": "Claim/pa-req-1"},
            "preAuthRef": "PA-2026-0042",
            "preAuthPeriod": {"start": "2026-01-06", "end": "2026-04-05"},
            "addItem": [{"productOrService": {"coding": [
                {"system": "http://www.ama-assn.org/go/cpt", "code": "97153"}]},
                "quantity": {"value": 40}},
                {"productOrService": {"coding": [
                    {"system": "http://www.ama-assn.org/go/cpt", "code": "97155"}]},
                 "quantity": {"value": 8}}]}
    return {**base, **changes}


def _send(d: MapperDeps, resource: dict[str, Any]) -> dict[str, Any]:
    message = EhrEvent(source="ehr", customer_id="acme", received_at=NOW,
                       events=[{"event_id": "pa"}], resource_type="ClaimResponse",
                       resource_b64=base64.b64encode(json.dumps(resource).encode()).decode())
    return handle_ehr_event(Event(message.to_bytes()), d)


def test_a_prior_authorization_answer_becomes_an_authorization_for_the_calendar() -> None:
    d, records, publisher = deps()
    result = _send(d, pas_response())
    assert result["authorizations"] == 1 and result["issues"] == []
    (auth,) = records.authorizations
    assert auth["authorization_number"] == "PA-2026-0042" and auth["payer"] == "UnitedHealthcare"
    assert (auth["start_date"], auth["end_date"]) == ("2026-01-06", "2026-04-05")
    assert auth["cpt_codes"] == ["97153", "97155"] and auth["units_authorized"] == 48
    assert auth["source"] == "fhir" and "MRN-77" not in json.dumps(auth)
    assert publisher.messages == []  # no claim line changed


@pytest.mark.parametrize(("changes", "issue"), [
    ({"preAuthPeriod": None}, "preauth_without_period"),
    ({"preAuthPeriod": {"start": "2026-01-06"}}, "preauth_without_period"),
    ({"preAuthPeriod": {"start": "2026-04-05", "end": "2026-01-06"}}, "invalid_authorization"),
    ({"insurer": {}}, "missing_payer"),
])
def test_an_unusable_prior_authorization_answer_is_reported(changes: dict[str, Any],
                                                            issue: str) -> None:
    d, _records, _ = deps()
    result = _send(d, pas_response(**changes))
    assert result["authorizations"] == 0 and issue in result["issues"]


def test_a_refused_or_withdrawn_answer_authorizes_nothing_and_units_are_never_guessed() -> None:
    d, records, _ = deps()
    assert _send(d, pas_response(outcome="error"))["authorizations"] == 0
    partial = pas_response(addItem=[{"productOrService": {"coding": [{"code": "97153"}]}}])
    assert _send(d, partial)["authorizations"] == 1
    assert records.authorizations[-1]["units_authorized"] is None
