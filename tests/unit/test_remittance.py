"""X12 835 → claim and service decisions (pyx12 underneath), on our own 835s and on the 18
third-party ones in ../shared/data/x12-835, which are read as they are."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import SHARED
from tests.x12 import Clp, Svc, build_835
from upstream.domain.records import Outcome
from upstream.domain.remittance import (
    Adjustment,
    RemitClaim,
    RemittanceUnreadable,
    looks_like_x12,
    outcome_records,
    read_835,
    service_outcome,
)

X12_DIR = SHARED / "data" / "x12-835"
THIRD_PARTY = sorted(p for p in X12_DIR.glob("*/*") if p.is_file() and p.name != "SOURCE.txt")


def _summary() -> dict[str, dict[str, str]]:
    with open(X12_DIR / "summary_by_file.csv", newline="") as f:
        return {row["file"]: row for row in csv.DictReader(f)}


@pytest.mark.parametrize("path", THIRD_PARTY, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_third_party_835_reads_or_is_refused_with_a_reason(path: Path) -> None:
    """Never an exception of another kind; a refusal names the segment; what is read accounts
    for every CLP the file holds (posted, or reported with its segment)."""
    data = path.read_bytes()
    try:
        remittance = read_835(data)
    except RemittanceUnreadable as exc:
        assert exc.reason in ("not_x12", "malformed_835", "not_835")
        if exc.reason != "not_x12":
            assert exc.problems and exc.problems[0].segment >= 1
            assert "segment" in str(exc)
        return
    expected = int(_summary()[f"{path.parent.name}/{path.name}"]["clp_claims"])
    unusable = [p for p in remittance.problems if p.level == "claim"]
    assert len(remittance.claims) + len(unusable) == expected
    assert all(p.segment >= 1 and p.reason for p in unusable)


def test_third_party_files_cover_both_outcomes_and_the_adjustments_match_the_derived_table(
) -> None:
    """CAS triplets we read agree with `cas_adjustments.csv` (derived from the same files by
    another script): group, CARC and amount per claim."""
    with open(X12_DIR / "cas_adjustments.csv", newline="") as f:
        table = Counter((r["file"], r["clp01_claim_id"], r["group_code"], r["carc"])
                        for r in csv.DictReader(f))
    outcomes: Counter[str] = Counter()
    checked = 0
    for path in THIRD_PARTY:
        try:
            remittance = read_835(path.read_bytes())
        except RemittanceUnreadable:
            continue
        name = f"{path.parent.name}/{path.name}"
        for claim in remittance.claims:
            for adjustment in claim.adjustments + tuple(
                    a for s in claim.services for a in s.adjustments):
                assert table[(name, claim.claim_id, adjustment.group, adjustment.carc)] > 0
                checked += 1
        outcomes.update(r["outcome"] for r in outcome_records(remittance))
    assert checked >= 30
    assert outcomes["PAID"] and outcomes["DENIED"]


def test_emedny_sample_reads_services_modifiers_amounts_and_remarks() -> None:
    remittance = read_835(
        (X12_DIR / "keironstoddart-edi-835-parser" / "emedny_sample.txt").read_bytes())
    assert remittance.version == "00501" and remittance.transactions == 1
    assert [len(c.services) for c in remittance.claims] == [4, 2, 4]
    first = remittance.claims[0].services[0]
    assert (first.cpt, first.modifiers, first.paid_cents, first.allowed_cents) == (
        "V2020", ("RB",), 600, 600)
    denied = remittance.claims[1]
    assert [a.code for s in denied.services for a in s.adjustments] == ["CO-29", "CO-29"]
    assert remittance.claims[2].services[2].rarc_codes == ("N206",)
    assert denied.payer_raw == "NYSDOH" and denied.decided_date == date(2010, 1, 1)


def test_our_835_reads_clean_with_ref_6r_cas_and_lq() -> None:
    remittance = read_835(build_835([Clp("C1", "1", "200", "150", [
        Svc("97153", "100", "100", modifiers=("HN",)),
        Svc("97155", "100", "50", cas=(("CO", "45", "20"), ("CO", "97", "30")),
            remarks=("N19",), line_ref="2")])]))
    assert remittance.problems == []
    second = remittance.claims[0].services[1]
    assert second.line_ref == "2" and second.rarc_codes == ("N19",)
    assert [a.code for a in second.adjustments] == ["CO-45", "CO-97"]


def test_wrong_segment_count_rejects_the_file_naming_the_segment() -> None:
    with pytest.raises(RemittanceUnreadable) as raised:
        read_835(build_835([Clp("C1", "1", "100", "100", [Svc("97153", "100", "100")])],
                           se_delta=3))
    assert raised.value.reason == "malformed_835"
    assert "SE count" in str(raised.value) and "segment" in str(raised.value)
    assert all(p.fatal for p in raised.value.problems)


@pytest.mark.parametrize("data, reason", [
    (b"", "not_x12"),
    (b"Claim ID,Payer,CPT\r\nC1,UHC,97153\r\n", "not_x12"),
    (b"\x00\x01binary", "not_x12"),
    (b"ISA*00*short~", "malformed_835"),
    (build_835([])[:-60], "malformed_835"),  # truncated: no IEA
    (build_835([]).replace(b"ST*835", b"ST*837"), "not_835"),
])
def test_unusable_files_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(RemittanceUnreadable) as raised:
        read_835(data)
    assert raised.value.reason == reason


def test_a_claim_with_a_garbled_amount_is_reported_alone() -> None:
    data = build_835([Clp("GOOD", "1", "100", "100", [Svc("97153", "100", "100")]),
                      Clp("BAD", "1", "100", "100", [Svc("97153", "1O0", "100")])])
    remittance = read_835(data)
    assert [c.claim_id for c in remittance.claims] == ["GOOD"]
    (problem,) = [p for p in remittance.problems if p.level == "claim"]
    assert problem.segment_id == "CLP" and "invalid_money" in problem.reason


def test_bom_and_latin1_are_read() -> None:
    data = build_835([Clp("C1", "1", "100", "100", [Svc("97153", "100", "100")])],
                     payer="SEGURO MÉDICO")
    assert read_835(b"\xef\xbb\xbf" + data).claims[0].payer_raw == "SEGURO MÉDICO"
    assert read_835(data.decode().encode("latin-1")).claims[0].payer_raw == "SEGURO MÉDICO"
    assert looks_like_x12(b"\xef\xbb\xbf\r\nISA*00")


def _claim(status: str = "1") -> RemitClaim:
    return RemitClaim("C", status, 100, 0, "P", None, None, (), (), (), 1)


@pytest.mark.parametrize("status, paid, adjustments, outcome", [
    ("1", 100, (), Outcome.PAID),
    ("1", 80, (Adjustment("CO", "45", 20),), Outcome.PAID),
    ("1", 80, (Adjustment("CO", "97", 20),), Outcome.PARTIAL),
    ("1", 0, (Adjustment("PR", "1", 100),), Outcome.PAID),  # all to the deductible
    ("1", 0, (Adjustment("CO", "29", 100),), Outcome.DENIED),  # timely filing
    ("4", 100, (), Outcome.DENIED),
    ("1", 0, (), Outcome.DENIED),
])
def test_service_outcome(status: str, paid: int, adjustments: tuple[Adjustment, ...],
                         outcome: Outcome) -> None:
    assert service_outcome(_claim(status), paid, adjustments) is outcome


_adjustment = st.builds(Adjustment, st.sampled_from(["CO", "PR", "OA", "PI", "CR"]),
                        st.sampled_from(["1", "2", "45", "97", "50", "29", "253", "B7"]),
                        st.integers(-5000, 5000))


@given(st.sampled_from(["1", "2", "3", "4", "19", "22"]), st.integers(0, 10**6),
       st.lists(_adjustment, max_size=6))
def test_outcome_properties(status: str, paid: int, adjustments: list[Adjustment]) -> None:
    outcome = service_outcome(_claim(status), paid, tuple(adjustments))
    assert outcome in (Outcome.PAID, Outcome.PARTIAL, Outcome.DENIED)
    if status == "4":
        assert outcome is Outcome.DENIED
    elif paid > 0:
        assert outcome is not Outcome.DENIED
    if all(a.routine for a in adjustments) and paid > 0 and status != "4":
        assert outcome is Outcome.PAID
