"""The pre-submission check page: a pasted claim in each accepted form scored with its factors
and fixes, bad pastes answered beside the field, hostile text escaped, and the queue of
flagged pending lines."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_api import NOW
from tests.unit.test_dashboard import request
from tests.unit.test_people import people_dashboard, person_cookie
from upstream.domain.risk.check import CheckError
from upstream.domain.risk.pasted import MAX_PASTE, lines_from_text

HOSTILE = "<script>alert('x')</script>"
ROWS = ("Claim #,Line,Patient ID,Primary Insurance,CPT Code,Mod 1,Units,DOS,Billed\n"
        "C-1001,1,P-77,Aetna,97153,,8,01/05/2026,$120.00\n"
        "C-1001,2,P-77,Aetna,97155,HO,2,01/05/2026,$80.00\n")
FHIR = ('{"resourceType": "Claim", "id": "c9", "status": "active", "use": "claim", '
        '"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", '
        '"code": "professional"}]}, '
        '"insurer": {"display": "Aetna"}, "created": "2026-01-05", '
        '"patient": {"reference": "Patient/1"}, "provider": {"display": "x"}, '
        '"priority": {"coding": [{"code": "normal"}]}, "insurance": [{"sequence": 1, '
        '"focal": true, "coverage": {"display": "Aetna"}}], "item": [{"sequence": 1, '
        '"productOrService": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", '
        '"code": "97153"}]}, "quantity": {"value": 8}, "servicedDate": "2026-01-05"}]}')


def _signed_in(email: str = "viewer@acme.test", password: str = "viewer-password"):  # type: ignore[no-untyped-def]
    deps, stores, _, _ = people_dashboard()
    cookie = person_cookie(deps, email, password)
    page = request(deps, "GET", "/check", cookie)
    assert page.status == 200, page.html
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.html)
    assert csrf
    return deps, stores, cookie, csrf.group(1)


@pytest.mark.parametrize("pasted", [
    ROWS, FHIR, '{"claim_id": "C-2", "payer": "Aetna", "lines": [{"cpt": "97153", '
    '"units": 8}]}'])
def test_any_accepted_form_is_scored_with_factors_and_fixes(pasted: str) -> None:
    deps, _, cookie, csrf = _signed_in()  # a viewer may check: it changes nothing
    page = request(deps, "POST", "/check", cookie, {"csrf": csrf, "claim": pasted})
    assert page.status == 200, page.html
    found = re.search(r'id="check-result" data-score="(\d+)" data-category="(\w+)"', page.html)
    assert found and 0 <= int(found.group(1)) <= 100
    assert found.group(2) in ("LOW", "MEDIUM", "HIGH")
    assert "P-77" not in page.html or "P-77" in pasted  # only ever what was pasted, escaped


def test_rows_read_like_a_file_and_one_claim_only() -> None:
    lines = lines_from_text(ROWS, None, NOW)
    assert [(x["claim_id"], x["cpt"], x["line"]) for x in lines] == [
        ("C-1001", "97153", 1), ("C-1001", "97155", 2)]
    assert lines[0]["patient_key"] != "P-77" and "P-77" not in str(lines)
    two = ROWS + "C-1002,1,P-78,Aetna,97153,,8,01/05/2026,$120.00\n"
    with pytest.raises(CheckError, match="2 claims"):
        lines_from_text(two, None, NOW)
    aliased = lines_from_text(ROWS.replace("Aetna", "AET-PPO"), {"AET-PPO": "Aetna"}, NOW)
    assert {x["payer"] for x in aliased} == {"Aetna"}


@pytest.mark.parametrize("pasted, why", [
    ("", "paste a claim"), ("{not json", "JSON"), ('{"resourceType": "Patient"}', "Claim"),
    ("just words", "cannot be read"), ("x" * (MAX_PASTE + 1), "KB"),
    ("Claim #,CPT Code\nC-1,NOTACODE\n", "cannot be read"),
    (ROWS.splitlines()[0] + "\nC-1,1,P-1,Aetna,NOTACODE,,8,01/05/2026,$1.00\n",
     "no usable claim line"),
    ('{"payer": "Aetna", "lines": [{"cpt": "97153", "modifiers": ["<b>"]}]}', "modifier")])
def test_bad_pastes_are_answered_beside_the_field(pasted: str, why: str) -> None:
    deps, _, cookie, csrf = _signed_in()
    page = request(deps, "POST", "/check", cookie, {"csrf": csrf, "claim": pasted})
    assert page.status == 400 and 'data-field="claim"' in page.html
    assert why.lower() in page.html.lower(), page.html[-1500:]
    assert "<b>" not in page.html.split("<main", 1)[1]  # a pasted tag is text, escaped


def test_hostile_paste_and_queue_text_are_escaped() -> None:
    deps, stores, cookie, csrf = _signed_in()
    stores.flagged["acme"] = [{"claim_id": HOSTILE, "line": 1, "payer": HOSTILE, "cpt": "97153",
                               "service_date": "2026-01-05", "billed_cents": 12000,
                               "score": 72, "category": "HIGH", "recommendation": "hold",
                               "fixes": [{"action": "add_modifier", "modifier": "HN",
                                          "confidence": 80}],
                               "factors": [{"name": "missing_modifier", "points": 20}]}]
    page = request(deps, "POST", "/check", cookie, {"csrf": csrf, "claim": HOSTILE})
    assert "<script>" not in page.html and "&lt;script&gt;" in page.html
    assert 'data-category="HIGH"' in page.html and "add modifier HN" in page.html
    assert request(deps, "POST", "/check", cookie, {"claim": ROWS}).status == 403  # no CSRF


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=400))
def test_any_paste_is_lines_or_a_check_error(text: str) -> None:
    try:
        lines = lines_from_text(text, None, NOW)
    except CheckError:
        return
    assert lines and all(line.get("cpt") for line in lines)


def test_the_practice_model_scores_the_check_and_says_its_reasons() -> None:
    from upstream.domain.risk.calibrate import FEATURES, Calibrated, to_document

    deps, stores, cookie, csrf = _signed_in()
    weights = tuple(3.0 if name == "modifier_missing" else 0.0 for name in FEATURES)
    stores.tenants["acme"]["risk_model"] = to_document(Calibrated(-2.0, weights, 500, 80))
    pasted = ('{"claim_id": "C-9", "payer": "Aetna", "lines": [{"cpt": "97110", "units": 2, '
              '"minutes": 30}]}')  # a therapy code without its GP modifier
    page = request(deps, "POST", "/check", cookie, {"csrf": csrf, "claim": pasted})
    assert page.status == 200, page.html
    assert 'class="reasons"' in page.html and "modifier is missing" in page.html
