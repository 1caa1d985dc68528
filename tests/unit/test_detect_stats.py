"""The statistics against reference values (textbook examples, closed forms, scipy)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as sps

from upstream.domain.detect import stats


def test_bh_on_the_1995_paper_example_rejects_four() -> None:
    # Benjamini & Hochberg (1995), section 4: 15 p-values, q = 0.05 → 4 discoveries.
    pvalues = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459,
               0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.0]
    assert stats.benjamini_hochberg(pvalues, 0.05) == [True] * 4 + [False] * 11


def test_weighted_bh_with_equal_weights_is_bh() -> None:
    pvalues = [0.001, 0.01, 0.02, 0.5]
    assert stats.benjamini_hochberg(pvalues, 0.05, [3.0] * 4) == stats.benjamini_hochberg(
        pvalues, 0.05)


def test_weights_move_budget_to_the_primary_hypotheses() -> None:
    weights = stats.split_weights([True, False, False, False])
    assert math.isclose(sum(weights), 4) and weights[0] == 2.0
    # 0.02 alone is not a discovery among four at q=0.05 with BH (0.05/4 = 0.0125)...
    assert stats.benjamini_hochberg([0.02, 0.9, 0.9, 0.9], 0.05) == [False] * 4
    # ...but is when it carries half the budget (0.02 / 2 = 0.01 ≤ 0.0125).
    assert stats.benjamini_hochberg([0.02, 0.9, 0.9, 0.9], 0.05, weights)[0]


def test_chi_square_matches_the_yates_closed_form() -> None:
    a, b, c, d = 20, 80, 10, 90
    n = a + b + c + d
    chi2 = n * (abs(a * d - b * c) - n / 2) ** 2 / ((a + b) * (c + d) * (a + c) * (b + d))
    expected = sps.chi2.sf(chi2, 1)
    assert math.isclose(stats.chi_square_pvalue(20, 100, 10, 100), expected, rel_tol=1e-9)


def test_chi_square_of_an_empty_margin_is_one() -> None:
    assert stats.chi_square_pvalue(0, 0, 5, 50) == 1.0


def test_predictive_tends_to_the_binomial_with_a_huge_baseline() -> None:
    p = stats.rate_increase_pvalue(15, 100, 100_000, 1_000_000)
    assert math.isclose(p, sps.binom.sf(14, 100, 0.1), rel_tol=0.02)


def test_predictive_carries_the_baseline_uncertainty() -> None:
    small = stats.rate_increase_pvalue(15, 100, 10, 100)
    large = stats.rate_increase_pvalue(15, 100, 1000, 10_000)
    assert small > large  # a 100-line baseline is less sure of its 10 % than a 10,000-line one


def test_design_effect_discounts_the_evidence() -> None:
    assert stats.rate_increase_pvalue(30, 200, 100, 1000, 2.0) > stats.rate_increase_pvalue(
        30, 200, 100, 1000, 1.0)


def test_no_denials_or_no_lines_is_no_evidence() -> None:
    assert stats.rate_increase_pvalue(0, 50, 5, 100) == 1.0
    assert stats.rate_increase_pvalue(0, 0, 5, 100) == 1.0


@given(st.integers(1, 60), st.integers(0, 200), st.floats(1.0, 4.0))
def test_predictive_pvalue_is_a_probability_and_falls_with_more_denials(
        x: int, x0: int, deff: float) -> None:
    n, n0 = 60, 400
    p = stats.rate_increase_pvalue(x, n, x0, n0, deff)
    assert 0.0 <= p <= 1.0
    if x < n:
        assert stats.rate_increase_pvalue(x + 1, n, x0, n0, deff) <= p + 1e-12


def test_dispersion_is_one_for_binomial_bins_and_more_for_clustered_ones() -> None:
    rng = np.random.default_rng(1)
    n = np.full(200, 100.0)
    binomial = rng.binomial(100, 0.1, 200).astype(float)
    clustered = rng.binomial(100, rng.beta(2, 18, 200)).astype(float)
    assert stats.dispersion(binomial, n) < 1.3
    assert stats.dispersion(clustered, n) > 3
    assert stats.dispersion([1.0], [10.0]) == 1.0  # too few bins to say


def test_cusum_path_by_hand() -> None:
    p0, p1 = 0.1, 0.2
    up, down = math.log(p1 / p0), math.log((1 - p1) / (1 - p0))
    path = stats.binomial_cusum(np.array([0.0, 5, 0, 1]), np.array([10.0, 10, 0, 1]), p0, p1)
    step2 = 5 * up + 5 * down
    assert path[0] == 0.0  # 10 * down < 0, floored at zero
    assert math.isclose(path[1], step2)
    assert path[2] == path[1]  # a day without decisions (weekend, holiday) adds nothing
    assert math.isclose(path[3], step2 + up)


def test_prediction_pvalue_by_hand() -> None:
    baseline = [math.e ** k - 1 for k in (1, 2, 3, 4)]
    t = (6 - 2.5) / (np.std([1, 2, 3, 4], ddof=1) * math.sqrt(1.25))
    expected = sps.t.sf(t, 3)
    assert math.isclose(stats.upper_prediction_pvalue(math.e ** 6 - 1, baseline), expected,
                        rel_tol=1e-9)
    assert stats.upper_prediction_pvalue(1000, [1, 2, 3]) == 1.0  # too few weeks


def test_histogram_median_and_rank_test_match_scipy_on_raw_values() -> None:
    assert stats.histogram_median(np.array([0, 1, 1, 1.0])) == 2
    assert stats.histogram_median(np.zeros(5)) is None
    current, baseline = np.array([0, 0, 3, 5, 4.0]), np.array([2, 6, 4, 1, 0.0])
    raw = sps.mannwhitneyu(np.repeat(np.arange(5), [0, 0, 3, 5, 4]),
                           np.repeat(np.arange(5), [2, 6, 4, 1, 0]), alternative="greater")
    assert math.isclose(stats.shift_pvalue(current, baseline), raw.pvalue)
    assert stats.shift_pvalue(np.zeros(5), baseline) == 1.0
