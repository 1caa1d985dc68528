"""athenaOne authorizations (`referralauths`) → Authorizations (pure), on the fake API's
fixtures and on hostile input."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from upstream.domain.athena_auths import map_referral_auth, map_referral_auths
from upstream.domain.fhir_map import MappingIssue
from upstream.domain.records import Authorization
from upstream.offline import offline_context
from upstream.stack.fake_athena import FIXTURES

CTX = offline_context("t")
AT = datetime(2026, 11, 20, 12, tzinfo=UTC)
PATIENTS = json.loads(FIXTURES.read_text())["practices"]["195900"]["patients"]


def records(patient: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return (copy.deepcopy(PATIENTS[patient]["referralauths"]),
            copy.deepcopy(PATIENTS[patient]["insurances"]))


def test_the_fixtures_map_to_authorizations_with_visits_and_codes() -> None:
    items, insurances = records("7101")
    found, issues = map_referral_auths(items, insurances, "7101", CTX, AT)
    assert issues == []
    current, old = found
    assert (current.authorization_number, current.payer, current.start_date,
            current.end_date) == ("UHC-ABA-7101", "UnitedHealthcare", date(2026, 9, 1),
                                  date(2026, 12, 10))
    assert (current.units_authorized, current.units_used) == (40.0, 34.0)
    assert current.cpt_codes == ("97153", "97155")
    assert current.patient_key == CTX.hash_patient("7101") != "7101"
    assert old.payer_raw == "Medicaid" and old.units_used == 24.0
    # no free text and no member id reach the record
    stored = json.dumps(current.to_document())
    assert "synthetic" not in stored and "note" not in current.to_document()


def test_records_that_cannot_be_tracked_are_issues_and_no_referral_needed_is_skipped() -> None:
    items, insurances = records("7102")
    found, issues = map_referral_auths(items, insurances, "7102", CTX, AT)
    assert [a.authorization_number for a in found] == ["AET-7102"]
    assert found[0].payer_raw == "AETNA OPEN ACCESS" and found[0].units_used is None
    assert [i.reason for i in issues] == ["authorization_without_period"]


BASE = {"referralauthid": 1, "referralauthnumber": "A-1", "insuranceid": "9101",
        "startdate": "01/01/2026", "expirationdate": "03/31/2026", "visitsapproved": "10",
        "visitsleft": "4", "referralauthunits": "VISIT"}
INSURANCES = copy.deepcopy(PATIENTS["7101"]["insurances"])


@pytest.mark.parametrize("change, reason", [
    ({"referralauthnumber": None}, "missing_authorization_number"),
    ({"referralauthnumber": "   "}, "missing_authorization_number"),
    ({"expirationdate": None}, "authorization_without_period"),
    ({"startdate": "13/45/2026"}, "invalid_date"),
    ({"expirationdate": "12/31/2025"}, "invalid_authorization"),
    ({"insuranceid": "nope"}, "unknown_payer"),
    ({"visitsapproved": "ten"}, "invalid_units"),
    ({"visitsapproved": -3}, "invalid_units"),
    ({"visitsleft": 11}, "invalid_units"),
    ({"referralauthnumber": "x" * 5000}, "invalid_authorization"),
])
def test_bad_records_are_issues_with_their_reason(change: dict[str, Any], reason: str) -> None:
    mapped = map_referral_auth({**BASE, **change}, INSURANCES, "7101", CTX, AT)
    assert isinstance(mapped, MappingIssue) and mapped.reason == reason, mapped


def test_units_other_than_visits_are_not_compared_and_the_package_name_stands_in() -> None:
    mapped = map_referral_auth({**BASE, "referralauthunits": "DAYS", "insuranceid": None,
                                "insurancepackagename": "BCBS-TX"}, [], None, CTX, AT)
    assert isinstance(mapped, Authorization)
    assert (mapped.units_authorized, mapped.units_used, mapped.patient_key) == (None, None, None)
    assert mapped.payer_raw == "BCBS-TX"


@pytest.mark.parametrize("value", [None, "x", 3, [], {"referralauths": []}])
def test_a_list_that_is_not_a_list_maps_to_nothing(value: Any) -> None:
    assert map_referral_auths(value, None, "7101", CTX, AT) == ([], [])


JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=12),
                       lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from([*sorted(BASE), "procedurecodes",
                                                 "noreferralrequired", "insurancepackagename"]),
                                JSONISH), max_size=4))
def test_never_raises_on_any_json(items: list[dict[str, Any]]) -> None:
    found, issues = map_referral_auths([{**BASE, **i} for i in items], INSURANCES, "7101",
                                       CTX, AT)
    assert len(found) + len(issues) <= len(items)
