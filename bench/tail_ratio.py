"""How sure a ratio of two p99s is: a block bootstrap over time.

The webhook bench reports the webhook's p99 over the floor's. On a shared 2-core machine,
slow answers come in bursts (3 to 10 requests within 50 ms) and in transients lasting
seconds, so the 12,000 latencies of a run are not independent and a plain bootstrap would
claim far too narrow an interval. Resampling whole blocks of consecutive seconds keeps the
bursts together (Carlstein 1986, non-overlapping blocks; Künsch 1989). The block is 5 s, ten
times the longest burst seen and the length of a transient; with 60 s per path that leaves 12
blocks each, so the interval is wide when the run was uneven, which is the point.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BLOCK_SECONDS = 5.0
RESAMPLES = 2000
LEVEL = 0.90  # a two-sided 90 % interval: its upper end is a one-sided 95 % bound


def _blocks(moments: Sequence[tuple[float, float]], block_seconds: float) -> list[np.ndarray]:
    """(start time, latency) pairs → latencies grouped by the block their start falls in.
    Slices of a run are separated by gaps; blocks are counted in run time, gaps dropped."""
    ordered = sorted(moments)
    groups: dict[int, list[float]] = {}
    origin = ordered[0][0] if ordered else 0.0
    for started, latency in ordered:
        groups.setdefault(int((started - origin) // block_seconds), []).append(latency)
    return [np.asarray(values) for _, values in sorted(groups.items())]


def p99(latencies: np.ndarray) -> float:
    """Nearest rank, as the bench prints it."""
    ordered = np.sort(latencies)
    return float(ordered[max(0, int(len(ordered) * 0.99) - 1)])


def ratio_interval(numerator: Sequence[tuple[float, float]],
                   denominator: Sequence[tuple[float, float]],
                   block_seconds: float = BLOCK_SECONDS, resamples: int = RESAMPLES,
                   seed: int = 0) -> tuple[float, float, float]:
    """p99(numerator) / p99(denominator) and its percentile interval at LEVEL."""
    if not numerator or not denominator:
        raise ValueError("both paths need latencies")
    rng = np.random.default_rng(seed)
    top, bottom = _blocks(numerator, block_seconds), _blocks(denominator, block_seconds)
    point = p99(np.concatenate(top)) / p99(np.concatenate(bottom))
    ratios = np.empty(resamples)
    for i in range(resamples):
        drawn_top = rng.integers(len(top), size=len(top))
        drawn_bottom = rng.integers(len(bottom), size=len(bottom))
        ratios[i] = (p99(np.concatenate([top[j] for j in drawn_top]))
                     / p99(np.concatenate([bottom[j] for j in drawn_bottom])))
    tail = (1 - LEVEL) / 2
    low, high = np.quantile(ratios, [tail, 1 - tail])
    return point, float(low), float(high)
