"""The webhook bench's interval on a ratio of p99s (bench/tail_ratio.py)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.tail_ratio import p99, ratio_interval


def _steady(scale: float, seconds: int = 60, rate: int = 200,
            seed: int = 1) -> list[tuple[float, float]]:
    rng = np.random.default_rng(seed)
    latencies = rng.lognormal(np.log(0.002), 0.5, seconds * rate) * scale
    return [(i / rate, float(v)) for i, v in enumerate(latencies)]


def test_the_same_distribution_gives_an_interval_around_one() -> None:
    point, low, high = ratio_interval(_steady(1.0, seed=1), _steady(1.0, seed=2))
    assert low < 1.0 < high and 0.85 < point < 1.15


def test_a_path_three_times_slower_is_found_about_three_times_slower() -> None:
    point, low, high = ratio_interval(_steady(3.0, seed=3), _steady(1.0, seed=4))
    assert 2.5 < low <= point <= high < 3.5


def test_bursts_widen_the_interval_instead_of_hiding_in_it() -> None:
    """Ten bursts of 40 slow answers in one path: the point moves and, because whole
    seconds are resampled together, so does the width."""
    calm = _steady(1.0, seed=5)
    bursty = list(calm)
    for burst in range(10):
        for k in range(40):
            index = burst * 1000 + k
            bursty[index] = (bursty[index][0], 0.03)
    _, calm_low, calm_high = ratio_interval(calm, _steady(1.0, seed=6))
    point, low, high = ratio_interval(bursty, _steady(1.0, seed=6))
    assert point > 2 and high - low > 2 * (calm_high - calm_low)


def test_p99_is_the_nearest_rank_the_bench_prints() -> None:
    assert p99(np.arange(1, 101, dtype=float)) == 99.0
    assert p99(np.array([5.0])) == 5.0


def test_an_empty_path_is_refused() -> None:
    with pytest.raises(ValueError, match="both paths"):
        ratio_interval([], _steady(1.0))
