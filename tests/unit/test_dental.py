"""Dental (CDT) codes: accepted in CSV and FHIR, counted by family, and a payer that starts
denying a family across codes found where no single code could be."""

from __future__ import annotations

import copy
import random
from datetime import timedelta

import pytest

from tests.claim_streams import START
from tests.unit.test_fhir_map import CTX, eob
from upstream.domain.aggregates import build_frame, cells_from_documents, line_contribution
from upstream.domain.codes import cdt
from upstream.domain.detect import drift
from upstream.domain.detect.findings import with_affected_lines
from upstream.domain.fhir_map import map_resource
from upstream.domain.values import InvalidValue, parse_procedure


@pytest.mark.parametrize("code, family", [
    ("D0120", "cdt_diagnostic"), ("D0100", "cdt_diagnostic"), ("D1110", "cdt_preventive"),
    ("D2740", "cdt_restorative"), ("D3330", "cdt_endodontics"), ("D4341", "cdt_periodontics"),
    ("D5899", "cdt_prosth_removable"), ("D5900", "cdt_maxillofacial"),
    ("D6010", "cdt_implants"), ("D6750", "cdt_prosth_fixed"), ("D7140", "cdt_oral_surgery"),
    ("D8080", "cdt_orthodontics"), ("D9999", "cdt_adjunctive"),
    ("D0099", None), ("97153", None), ("D12345", None), ("d2740", None), (None, None),
    ("", None), ("DXXXX", None)])
def test_each_cdt_code_belongs_to_its_family(code: str | None, family: str | None) -> None:
    assert cdt.family(code) == family


def test_cdt_codes_are_read_from_csv_cells_like_other_hcpcs() -> None:
    assert parse_procedure("D2740") == ("D2740", ())
    assert parse_procedure("d4341 ") == ("D4341", ())
    with pytest.raises(InvalidValue):
        parse_procedure("D27401")


def test_a_fhir_line_coded_in_cdt_maps() -> None:
    resource = copy.deepcopy(eob())
    for system in ("http://www.ada.org/cdt", "urn:oid:2.16.840.1.113883.6.13",
                   "http://terminology.hl7.org/CodeSystem/CD2"):
        resource["item"][0]["productOrService"] = {"coding": [{"system": system,
                                                               "code": "D4341"}]}
        lines = map_resource(resource, CTX).lines
        assert lines[0].cpt == "D4341", system


def test_dental_lines_count_towards_their_family() -> None:
    doc = {"payer": "Delta Dental", "cpt": "D4341", "outcome": "DENIED", "billed_cents": 22000,
           "decided_date": "2025-03-03", "carc_codes": ["CO-119"]}
    (fields,) = line_contribution(doc).values()
    assert fields["family.cdt_periodontics.decided"] == 1
    assert fields["family.cdt_periodontics.denied"] == 1
    assert fields["family.cdt_periodontics.denied_cents"] == 22000
    (medical,) = line_contribution({**doc, "cpt": "97153"}).values()
    assert not any(name.startswith("family.") for name in medical)


PERIO = ("D4341", "D4342", "D4355", "D4910", "D4381")
OTHER = ("D0120", "D1110", "D0274", "D2391", "D2740")


def dental_documents(change_day: int, days: int = 182) -> list[dict[str, object]]:
    """A dental practice's payer: each periodontal code a few lines a week; from `change_day`
    the payer denies periodontics 3× as often (a frequency-limit policy change)."""
    rng = random.Random(11)
    docs: list[dict[str, object]] = []
    for index in range(days):
        day = START + timedelta(days=index)
        if day.weekday() >= 5:
            continue
        for line in range(14):
            code = rng.choice(PERIO if line < 5 else OTHER)
            rate = 0.06 * (3 if code in PERIO and index >= change_day else 1)
            denied = rng.random() < rate
            docs.append({"payer": "Delta Dental", "cpt": code, "units": 1,
                         "outcome": "DENIED" if denied else "PAID", "billed_cents": 15000,
                         "allowed_cents": 11000, "paid_cents": 0 if denied else 11000,
                         "decided_date": day.isoformat(),
                         "carc_codes": ["CO-119"] if denied else []})
    return docs


def test_a_payer_denying_a_family_across_codes_is_found_as_that_family() -> None:
    docs = dental_documents(change_day=154)
    run_day = START + timedelta(days=182)
    found = drift.weekly_test(build_frame(cells_from_documents(docs), end=run_day), run_day)
    scopes = {f.scope for f in found}
    assert "family:cdt_periodontics" in scopes, scopes
    assert not any(s.startswith("cpt:D4") for s in scopes)  # no code alone is enough
    finding = next(f for f in found if f.scope == "family:cdt_periodontics")
    assert "Periodontics (dental)" in finding.title
    lines = [{"cpt": "D4341", "billed_cents": 1}, {"cpt": "D1110", "billed_cents": 2}]
    chosen = with_affected_lines(finding, lines).evidence["affected_lines"]
    assert [line["cpt"] for line in chosen] == ["D4341"]


def test_no_change_no_family_alert() -> None:
    docs = dental_documents(change_day=10_000)
    run_day = START + timedelta(days=182)
    found = drift.weekly_test(build_frame(cells_from_documents(docs), end=run_day), run_day)
    assert not [f for f in found if f.scope.startswith("family:")]
