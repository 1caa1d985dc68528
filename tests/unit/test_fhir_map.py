"""FHIR → records: third-party resources (HL7 spec examples, CMS Blue Button, Synthea) and
hand-made edge cases. Mapping never raises; every resource lands somewhere visible."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import SHARED
from upstream.domain.fhir_input import iter_resources
from upstream.domain.fhir_map import map_resource
from upstream.domain.records import Outcome
from upstream.offline import offline_context

DATA = SHARED / "data"
THIRD_PARTY = sorted([*DATA.glob("hl7-fhir-examples/*.json"), *DATA.glob("cms-bfd/*.ndjson"),
                      *DATA.glob("synthea-smart-r4/*.ndjson")])
CTX = offline_context("t")


@pytest.mark.parametrize("path", THIRD_PARTY, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_third_party_resource_maps_or_is_reported(path: Path) -> None:
    for resource in iter_resources(path.read_bytes()):
        result = map_resource(resource, CTX)
        landed = (len(result.lines) + len(result.outcomes) + len(result.coverages)
                  + len(result.issues) + sum(result.ignored.values()))
        assert landed > 0, resource.get("id") if isinstance(resource, dict) else resource


def test_the_cms1500_example_maps_to_a_line() -> None:
    resource = json.loads((DATA / "hl7-fhir-examples/claim-example-cms1500-medical.json")
                          .read_text())
    (line,) = map_resource(resource, CTX).lines
    assert (line.claim_id, line.cpt, line.billed_cents, line.outcome) == (
        "MED-00050", "62264", 1250000, Outcome.PENDING)
    assert line.patient_key and len(line.patient_key) == 64
    assert line.diagnosis_codes == ("G894", "M47816")


def eob(**changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ExplanationOfBenefit", "id": "eob1", "status": "active",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type",
                             "code": "professional"}]},
        "use": "claim", "patient": {"reference": "Patient/p1"}, "created": "2025-03-04",
        "insurer": {"display": "UHC"}, "provider": {"reference": "Practitioner/1"},
        "claim": {"reference": "Claim/C77"}, "outcome": "complete",
        "insurance": [{"focal": True, "coverage": {"reference": "Coverage/1"}}],
        "payment": {"date": "2025-03-10"},
        "item": [
            {"sequence": 1, "productOrService": {"coding": [
                {"system": "http://www.ama-assn.org/go/cpt", "code": "97153"}]},
             "modifier": [{"coding": [{"code": "HN"}]}], "servicedDate": "2025-03-01",
             "quantity": {"value": 8}, "net": {"value": 240.0, "currency": "USD"},
             "adjudication": [
                 {"category": {"coding": [{"code": "submitted"}]}, "amount": {"value": 240}},
                 {"category": {"coding": [{"code": "benefit"}]}, "amount": {"value": 0}},
                 {"category": {"coding": [{"code": "denied"}]}, "amount": {"value": 240},
                  "reason": {"coding": [{
                      "system": "https://x12.org/codes/claim-adjustment-reason-codes",
                      "code": "197"}]}}]},
            {"sequence": 2, "productOrService": {"coding": [
                {"system": "http://www.ama-assn.org/go/cpt", "code": "97155"}]},
             "servicedDate": "2025-03-01", "net": {"value": "180.00", "currency": "USD"},
             "adjudication": [
                 {"category": {"coding": [{"code": "eligible"}]}, "amount": {"value": 150}},
                 {"category": {"coding": [{"code": "benefit"}]}, "amount": {"value": 150}}]}]}
    resource.update(changes)
    return resource


def test_an_eob_gives_lines_with_outcomes_joined_to_their_claim() -> None:
    denied, paid = map_resource(eob(), CTX).lines
    assert denied.claim_id == paid.claim_id == "C77"  # the claim's id, so lines join
    assert (denied.outcome, denied.carc_codes, denied.modifiers) == (
        Outcome.DENIED, ("197",), ("HN",))
    assert denied.payer == "UnitedHealthcare" and str(denied.decided_date) == "2025-03-10"
    assert (paid.outcome, paid.paid_cents, paid.billed_cents) == (Outcome.PAID, 15000, 18000)


def test_a_claim_response_is_an_outcome_update() -> None:
    response = {"resourceType": "ClaimResponse", "id": "r1", "status": "active",
                "type": {"coding": [{"code": "professional"}]}, "use": "claim",
                "patient": {"reference": "Patient/p1"}, "created": "2025-03-05",
                "insurer": {"display": "Aetna"}, "request": {"reference": "Claim/C77"},
                "outcome": "complete", "item": [{"itemSequence": 2, "adjudication": [
                    {"category": {"coding": [{"code": "benefit"}]},
                     "amount": {"value": 99.5}}]}]}
    (update,) = map_resource(response, CTX).outcomes
    assert (update.claim_id, update.line_key, update.outcome, update.paid_cents) == (
        "C77", "L2", Outcome.PAID, 9950)


def test_a_bundle_with_one_bad_entry_lands_the_good_ones_and_voids_deletes() -> None:
    bad = eob(id="bad", item=[{"sequence": 1, "productOrService": {"coding": [
        {"system": "http://snomed.info/sct", "code": "185349003"}]}}])
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": eob()}, {"resource": bad}, {"resource": {"resourceType": "Patient"}},
        {"request": {"method": "DELETE", "url": "Claim/C9"}}, "garbage"]}
    result = map_resource(bundle, CTX)
    assert len(result.lines) == 2
    assert {i.reason for i in result.issues} == {"unsupported_code_system", "invalid_entry"}
    assert result.ignored == {"Patient": 1}
    (void,) = result.outcomes
    assert (void.claim_id, void.outcome) == ("C9", Outcome.VOID)


def test_entered_in_error_voids_the_lines() -> None:
    lines = map_resource(eob(status="entered-in-error"), CTX).lines
    assert {line.outcome for line in lines} == {Outcome.VOID}


@pytest.mark.parametrize(("resource", "reason"), [
    (eob(item=[]), "no_items"),
    (eob(created="not a date"), "invalid_fhir"),
    ({"resourceType": "Claim"}, "invalid_fhir"),
    ({"hello": "world"}, "not_fhir"),
    ([1, 2], "not_fhir")])
def test_unusable_resources_are_reported(resource: Any, reason: str) -> None:
    assert [i.reason for i in map_resource(resource, CTX).issues] == [reason]


def test_an_r5_resource_labelled_r4_is_read_as_r5() -> None:
    r5 = eob()
    r5["meta"] = {"profile": ["http://hl7.org/fhir/4.0/StructureDefinition/ExplanationOfBenefit"]}
    r5["insurance"][0]["coverage"] = {"reference": "Coverage/1"}
    r5["event"] = [{"type": {"coding": [{"code": "received"}]}, "whenDateTime": "2025-03-04"}]
    result = map_resource(r5, CTX)
    assert result.versions == {"R5": 1} and len(result.lines) == 2


def test_ndjson_with_a_broken_line_reports_it() -> None:
    text = json.dumps(eob()) + "\n{not json\n" + json.dumps(eob(id="e2"))
    resources = list(iter_resources(text.encode()))
    assert [i.reason for i in map_resource(resources[1], CTX).issues] == ["not_json"]
    assert map_resource(resources[1], CTX).issues[0].resource_id == "line 2"


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_mapping_never_raises_on_mangled_resources(data: st.DataObject) -> None:
    resource: Any = copy.deepcopy(eob())
    junk = st.one_of(st.none(), st.integers(), st.text(max_size=8), st.lists(st.integers(),
                                                                             max_size=2),
                     st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))
    for _ in range(data.draw(st.integers(1, 4))):
        target: Any = resource
        path: tuple[Any, ...] = data.draw(st.sampled_from([
            ("item",), ("item", 0), ("item", 0, "adjudication"), ("insurer",), ("payment",),
            ("claim",), ()]))
        for step in path:
            in_dict = isinstance(target, dict) and step in target
            in_list = isinstance(target, list) and isinstance(step, int) and step < len(target)
            if in_dict or in_list:
                target = target[step]
        if isinstance(target, dict) and target:
            key = data.draw(st.sampled_from(sorted(target)))
            target[key] = data.draw(junk)
    map_resource(resource, CTX)


def test_a_contained_resource_naming_no_fhir_type_is_an_issue_not_an_exception() -> None:
    """Found by `make fuzz`: fhir.resources raised KeyError('R4.Type') from validation."""
    claim = {**eob(), "contained": [{"resourceType": "", "id": "p1"}]}
    result = map_resource(claim, CTX)
    assert result.issues or result.lines  # read leniently, or reported; never raised


def test_a_bundle_of_unexpected_shape_is_reported_entry_by_entry() -> None:
    """Found by `make fuzz`: `"entry": true` raised TypeError out of the mapper."""
    assert map_resource({"resourceType": "Bundle", "entry": True}, CTX).issues[0].reason == (
        "unmappable")
    mixed = {"resourceType": "Bundle", "entry": [{"request": "x"}, {"resource": eob()}]}
    result = map_resource(mixed, CTX)
    assert result.lines and [i.reason for i in result.issues] == ["unmappable"]
