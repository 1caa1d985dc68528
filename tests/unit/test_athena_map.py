"""athenaOne claim JSON → claim lines (pure), on the fake API's fixture claims and bad input."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from upstream.domain.athena_map import ClaimRef, claim_ref, map_athena_claim
from upstream.offline import offline_context
from upstream.stack.fake_athena import FIXTURES

CTX = offline_context("t")
AT = datetime(2026, 11, 20, 12, tzinfo=UTC)
PRACTICE = json.loads(FIXTURES.read_text())["practices"]["195900"]


def fixture(claim_id: str = "30001") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    claim = copy.deepcopy(PRACTICE["claims"][claim_id])
    insurances = PRACTICE["patients"][str(claim["patientid"])]["insurances"]
    return claim, copy.deepcopy(insurances)


@pytest.mark.parametrize("focus, topic, ref", [
    ("urn:athenahealth:athenanet:claim:a-195900.claim-30001", None,
     ClaimRef("195900", "30001", False)),
    ("urn:athenahealth:athenanet:claim:a-195900.Claim-7", "…/Claim.delete",
     ClaimRef("195900", "7", True)),
    ("Claim/30002", "https://athenahealth.com/fhir/topic/Claim.update",
     ClaimRef("195900", "30002", False)),
    ("https://api.platform.athenahealth.com/fhir/r4/Claim/a-1.claim-9", None,
     ClaimRef("1", "9", False)),
    ("urn:athenahealth:athenanet:encounter:a-195900.E-12", None, None),
    ("Patient/4", None, None),
    (None, None, None),
    ("", None, None),
])
def test_claim_ref(focus: str | None, topic: str | None, ref: ClaimRef | None) -> None:
    assert claim_ref(focus, topic, "195900") == ref


def test_every_fixture_claim_maps_with_payer_codes_money_and_hashed_patient() -> None:
    lines = []
    for claim_id in PRACTICE["claims"]:
        claim, insurances = fixture(claim_id)
        result = map_athena_claim(claim, insurances, CTX, AT)
        assert result.issues == [] and len(result.lines) == len(claim["procedures"])
        lines += result.lines
    first = lines[0]
    assert (first.claim_id, first.cpt, first.payer, first.billed_cents) == (
        "30001", "97153", "UnitedHealthcare", 6000)
    assert first.diagnosis_codes == ("F840",) and first.outcome.value == "PENDING"
    assert first.patient_key and first.patient_key != "7101"
    assert any(line.modifiers == ("HO",) for line in lines)
    repeated = [line.line_key for line in lines if line.claim_id == "30003"]
    assert len(set(repeated)) == 3  # the same code twice on one claim: two lines


def test_the_payer_is_the_claims_insurance_not_simply_the_first() -> None:
    claim, insurances = fixture()
    claim["primaryinsurancepayer"]["primarypatientinsuranceid"] = insurances[1]["insuranceid"]
    (line, *_) = map_athena_claim(claim, insurances, CTX, AT).lines
    assert line.payer_raw == "Medicaid"


@pytest.mark.parametrize("mutate, reason", [
    (lambda c, i: c.update(procedures=[]), "no_procedures"),
    (lambda c, i: c.pop("procedures"), "no_procedures"),
    (lambda c, i: c.pop("claimid"), "missing_claim_id"),
    (lambda c, i: i.clear(), "unknown_payer"),
    (lambda c, i: c.update(billedservicedate="13/45/2026"), "invalid_date"),
])
def test_unusable_claims_are_reported_not_raised(mutate: Any, reason: str) -> None:
    claim, insurances = fixture()
    mutate(claim, insurances)
    result = map_athena_claim(claim, insurances, CTX, AT)
    assert result.lines == [] and [i.reason for i in result.issues] == [reason]


def test_one_bad_procedure_among_good_ones_the_good_ones_land() -> None:
    claim, insurances = fixture("30003")
    claim["procedures"][1]["chargeamount"] = "twelve dollars"
    claim["procedures"][2]["procedurecode"] = None
    claim["procedures"].append("not an object")
    result = map_athena_claim(claim, insurances, CTX, AT)
    assert len(result.lines) == 1
    assert sorted(i.reason for i in result.issues) == [
        "invalid_money", "invalid_procedure", "missing_cpt"]


def test_amounts_and_ids_as_numbers_or_strings_mean_the_same() -> None:
    claim, insurances = fixture()
    as_numbers = copy.deepcopy(claim)
    as_numbers["procedures"][0]["chargeamount"] = 60
    as_numbers["claimid"] = "30001"
    a = map_athena_claim(claim, insurances, CTX, AT).lines[0]
    b = map_athena_claim(as_numbers, insurances, CTX, AT).lines[0]
    assert a == b


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=12),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.sampled_from(
                         ["claimid", "procedures", "procedurecode", "chargeamount",
                          "primaryinsurancepayer", "billedservicedate", "patientid",
                          "diagnoses", "insuranceid"]), inner, max_size=5), max_leaves=20)


@settings(max_examples=300)
@given(_json, _json)
def test_any_json_maps_or_is_reported_never_raises(claim: Any, insurances: Any) -> None:
    result = map_athena_claim(claim, insurances, CTX, AT)
    assert result.lines or result.issues
