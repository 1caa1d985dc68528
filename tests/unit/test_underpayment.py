"""Unit prices in the aggregates, the one-sided KS test and the underpayment detector."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from tests.claim_streams import START, Behaviour, documents
from upstream.domain.aggregates import (
    bin_price,
    build_frame,
    cells_from_documents,
    line_contribution,
    price_bin,
)
from upstream.domain.detect import stats, underpay
from upstream.domain.detect.runner import Schedule, backtest, run_findings

PAID = {"payer": "Aetna", "cpt": "97153", "units": 4, "outcome": "PAID",
        "decided_date": "2025-03-03", "submitted_date": "2025-02-17", "billed_cents": 12000,
        "allowed_cents": 8640, "paid_cents": 6912, "carc_codes": ["CO-45", "PR-2"]}


def fields(doc: dict[str, object]) -> dict[str, float]:
    (only,) = line_contribution(doc).values()
    return only


def test_a_paid_line_adds_its_allowed_price_per_unit() -> None:
    got = fields(PAID)
    assert got["cpt.97153.paid"] == 1 and got["cpt.97153.paid_units"] == 4
    assert got["cpt.97153.allowed_cents"] == 8640  # allowed, not paid: the deductible is not a cut
    assert got[f"ppu.97153.{price_bin(2160)}"] == 1
    assert abs(bin_price(price_bin(2160)) - 2160) / 2160 < 0.005


def test_without_an_allowed_amount_the_paid_amount_prices_the_line() -> None:
    got = fields({**PAID, "allowed_cents": None})
    assert got["cpt.97153.allowed_cents"] == 6912


@pytest.mark.parametrize("change", [
    {"paid_cents": 0, "allowed_cents": None}, {"units": 0}, {"units": -2}, {"units": "4"},
    {"allowed_cents": 3, "units": 4},  # under a cent a unit
])
def test_lines_that_cannot_be_priced_add_no_price(change: dict[str, object]) -> None:
    got = fields({**PAID, **change})
    assert not any(name.startswith(("ppu.", "cpt.97153.paid")) for name in got)
    assert got["paid"] == 1


def test_missing_units_count_as_one() -> None:
    assert fields({**PAID, "units": None})["cpt.97153.paid_units"] == 1


def test_denied_lines_are_not_priced() -> None:
    got = fields({**PAID, "outcome": "DENIED", "paid_cents": 0})
    assert not any(name.startswith("ppu.") for name in got)


# --- the test ----------------------------------------------------------------------------------

histograms = st.dictionaries(st.integers(600, 700), st.integers(1, 40), min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(histograms, histograms)
def test_histogram_ks_equals_scipy_on_the_samples(current: dict[int, int],
                                                  baseline: dict[int, int]) -> None:
    x = np.repeat(list(current), list(current.values()))
    y = np.repeat(list(baseline), list(baseline.values()))
    expected = scipy_stats.ks_2samp(x, y, alternative="greater", method="asymp").pvalue
    got = stats.ks_smaller_pvalue({k: float(v) for k, v in current.items()},
                                  {k: float(v) for k, v in baseline.items()})
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_ks_is_one_sided() -> None:
    low = {600: 50.0}
    high = {700: 50.0}
    assert stats.ks_smaller_pvalue(low, high) < 1e-6
    assert stats.ks_smaller_pvalue(high, low) == 1.0
    assert stats.ks_smaller_pvalue({}, high) == 1.0
    assert stats.ks_larger_pvalue(np.array([0, 0, 50.0]), np.array([50.0, 0, 0])) < 1e-6


# --- the detector --------------------------------------------------------------------------------

def frame_of(*behaviours: Behaviour, days: int = 240) -> tuple[object, date]:
    docs = [d for b in behaviours for d in documents(b, days)]
    run_day = START + timedelta(days=days)
    return build_frame(cells_from_documents(docs), end=run_day), run_day


TYPICAL = [Behaviour(f"Payer {i}") for i in range(3)]


def test_a_ten_percent_cut_on_one_code_is_found_with_dollars_short() -> None:
    cut = Behaviour("Cutter", price_after=0.9, price_cpt="97153", change_day=200)
    frame, run_day = frame_of(cut, *TYPICAL)
    found = underpay.weekly_test(frame, run_day)  # type: ignore[arg-type]
    assert [(f.payer, f.scope) for f in found] == [("Cutter", "cpt:97153")]
    metrics = found[0].metrics
    assert 0.07 < metrics["cut"] < 0.13
    assert metrics["short_dollars_per_month"] > 50
    assert found[0].evidence["unit_price_histogram_current"]
    assert "per unit of 97153" in found[0].title


def test_no_change_no_underpayment() -> None:
    frame, run_day = frame_of(*TYPICAL, Behaviour("Steady", price=0.8))
    assert underpay.weekly_test(frame, run_day) == []  # type: ignore[arg-type]


def test_a_cut_below_the_practical_floor_is_not_alerted() -> None:
    small = Behaviour("Sequestered", price_after=0.98, change_day=150)
    frame, run_day = frame_of(small, *TYPICAL)
    assert underpay.weekly_test(frame, run_day) == []  # type: ignore[arg-type]


def test_a_payer_with_too_few_priced_lines_is_not_judged() -> None:
    tiny = Behaviour("Tiny", per_day=1, price_after=0.5, change_day=225)
    frame, run_day = frame_of(tiny, *TYPICAL)
    assert underpay.weekly_test(frame, run_day) == []  # type: ignore[arg-type]


def test_a_price_rise_is_not_an_underpayment() -> None:
    rise = Behaviour("Generous", price_after=1.3, change_day=200)
    frame, run_day = frame_of(rise, *TYPICAL)
    assert underpay.weekly_test(frame, run_day) == []  # type: ignore[arg-type]


def test_the_weekly_run_includes_underpayment_and_backtest_opens_one_alert() -> None:
    cut = Behaviour("Cutter", price_after=0.8, change_day=180)
    docs = [d for b in (cut, *TYPICAL) for d in documents(b, 260)]
    cells = cells_from_documents(docs)
    run_day = START + timedelta(days=250)
    weekly = run_findings(build_frame(cells, end=run_day), run_day, Schedule.WEEKLY)
    assert {f.type for f in weekly} >= {"underpayment"}
    alerts = [a for a in backtest("t", cells, START + timedelta(days=150), run_day)
              if a.type == "underpayment"]
    by_scope = {(a.payer, a.scope) for a in alerts}
    assert by_scope == {("Cutter", f"cpt:{c}") for c in ("97153", "97155", "97530")}
    assert all(a.created_at >= START + timedelta(days=180) for a in alerts)
