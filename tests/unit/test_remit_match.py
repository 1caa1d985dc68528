"""Which stored line an 835 service is about, and what the posting does."""

from __future__ import annotations

from datetime import date
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.x12 import Clp, Svc, build_835
from upstream.domain.remit_match import match_claim, plan_posting
from upstream.domain.remittance import Adjustment, RemitClaim, RemitService, read_835


def line(doc_id: str, cpt: str, day: str = "2024-01-05", mods: tuple[str, ...] = (),
         key: str | None = None, **extra: Any) -> tuple[str, dict[str, Any]]:
    return doc_id, {"claim_id": "C1", "cpt": cpt, "service_date": day,
                    "modifiers": list(mods), "line_key": key or f"{cpt}|{day}",
                    "outcome": "PENDING", **extra}


def service(cpt: str, paid: int = 100, day: date | None = date(2024, 1, 5),
            mods: tuple[str, ...] = (), ref: str | None = None,
            adjustments: tuple[Adjustment, ...] = ()) -> RemitService:
    return RemitService(cpt, mods, 100, paid, None, 1.0, day, ref, adjustments, ())


def claim(*services: RemitService, status: str = "1", paid: int = 100,
          decided: date = date(2024, 1, 20),
          adjustments: tuple[Adjustment, ...] = ()) -> RemitClaim:
    return RemitClaim("C1", status, 100, paid, "UHC", None, decided, adjustments, (),
                      tuple(services), 7)


def test_ref_6r_beats_code_and_date() -> None:
    stored = [line("a", "97153", key="L1"), line("b", "97153", key="L2")]
    result = match_claim(claim(service("97153", ref="2", paid=0,
                                       adjustments=(Adjustment("CO", "50", 100),))), stored)
    (update,) = result.updates
    assert update.doc_id == "b" and update.fields["outcome"] == "DENIED"
    assert update.fields["carc_codes"] == ["CO-50"]
    assert update.fields["decided_date"] == "2024-01-20"


def test_same_code_twice_is_matched_by_modifiers_then_each_line_once() -> None:
    stored = [line("hn", "97153", mods=("HN",)), line("ho", "97153", mods=("HO",))]
    result = match_claim(claim(service("97153", mods=("HO",)), service("97153", mods=("HN",)),
                               service("97153")), stored)
    assert [u.doc_id for u in result.updates] == ["ho", "hn"]
    assert len(result.unmatched) == 1  # a third 97153 has no line left


def test_claim_level_decision_goes_to_every_line_money_only_to_a_single_one() -> None:
    denied = claim(status="4", paid=0, adjustments=(Adjustment("CO", "16", 100),))
    two = match_claim(denied, [line("a", "97153"), line("b", "97155")])
    assert {u.fields["outcome"] for u in two.updates} == {"DENIED"}
    assert all("paid_cents" not in u.fields for u in two.updates)
    one = match_claim(claim(paid=100), [line("a", "97153")])
    assert one.updates[0].fields["paid_cents"] == 100


def test_an_older_remittance_never_overwrites_a_newer_decision() -> None:
    stored = [line("a", "97153", outcome="PAID", decided_date="2024-03-01")]
    result = match_claim(claim(service("97153", paid=0)), stored)
    assert result.updates == [] and result.stale == 1


def test_reversal_then_correction_in_one_file_leaves_the_correction() -> None:
    remittance = read_835(build_835([
        Clp("C1", "22", "-100", "-100", [Svc("97153", "-100", "-100")]),
        Clp("C1", "1", "100", "60", [Svc("97153", "100", "60",
                                          cas=(("CO", "97", "40"),))]),
    ]))
    posting = plan_posting(remittance, {"C1": [line("a", "97153")]})
    assert posting.changes["a"]["outcome"] == "PARTIAL"
    assert posting.changes["a"]["paid_cents"] == 6000
    lone_reversal = read_835(build_835([
        Clp("C1", "22", "-100", "-100", [Svc("97153", "-100", "-100")])]))
    reopened = plan_posting(lone_reversal, {"C1": [line("a", "97153", outcome="PAID")]})
    assert reopened.changes["a"]["outcome"] == "PENDING"


def test_unknown_claims_and_lines_are_reported_with_their_segment() -> None:
    remittance = read_835(build_835([
        Clp("NOPE", "1", "100", "100", [Svc("97153", "100", "100")]),
        Clp("C1", "1", "200", "100", [Svc("97153", "100", "100"), Svc("99999", "100", "0")]),
    ]))
    posting = plan_posting(remittance, {"C1": [line("a", "97153")]})
    assert set(posting.changes) == {"a"}
    assert posting.reasons() == {"claim_not_found": 1, "line_not_found": 1}
    assert all(r.line > 0 for r in posting.rejected)


@given(st.lists(st.sampled_from(["97153", "97155", "97151"]), max_size=6),
       st.lists(st.sampled_from(["97153", "97155", "97156"]), min_size=1, max_size=6))
def test_every_service_is_posted_or_reported_and_no_line_twice(
        stored_codes: list[str], remit_codes: list[str]) -> None:
    stored = [line(f"d{i}", code, key=f"L{i + 1}") for i, code in enumerate(stored_codes)]
    result = match_claim(claim(*(service(c) for c in remit_codes)), stored)
    ids = [u.doc_id for u in result.updates]
    assert len(ids) == len(set(ids))
    assert len(ids) + len(result.unmatched) == len(remit_codes)


def test_the_sample_remittance_restores_the_decisions_the_exports_leave_open() -> None:
    """The sample's 835 (one ST per payer and day) posted onto the lines its claims files show
    as submitted gives back the generated truth: outcome, money and CARC per line (a share
    left to the patient is a paid line in 835 terms, not a partial one)."""
    from upstream.domain.sample import generate, monthly_files

    data = generate(date(2025, 1, 1), date(2025, 2, 28), lines_per_day=20, seed=3)
    files = monthly_files(data)
    (name,) = [n for n in files if n.startswith("remittance/")]
    remittance = read_835(files[name])
    assert remittance.transactions > 1 and remittance.problems == []
    cutoff = date.fromisoformat(name.removeprefix("remittance/era-").removesuffix(".835"))
    truth = [r for r in data.claims if r["decided_date"] and r["decided_date"] >= cutoff]
    stored: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for r in truth:
        stored.setdefault(r["claim_id"], []).append((f"{r['claim_id']}/{r['line']}", {
            "claim_id": r["claim_id"], "cpt": r["cpt"], "modifiers": r["modifiers"],
            "service_date": r["service_date"].isoformat(), "line_key": f"L{r['line']}",
            "outcome": "PENDING"}))
    posting = plan_posting(remittance, stored)
    assert posting.rejected == [] and len(posting.changes) == len(truth)
    for r in truth:
        change = posting.changes[f"{r['claim_id']}/{r['line']}"]
        expected = "PAID" if r["outcome"] == "PARTIAL" else r["outcome"]
        assert (change["outcome"], change["paid_cents"]) == (expected, r["paid_cents"])
        assert change["decided_date"] == r["decided_date"].isoformat()
        assert set(r["carc_codes"]) <= set(change["carc_codes"])
