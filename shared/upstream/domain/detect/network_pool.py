"""Pooled network detection: a payer change found from the sum of many practices' claims,
before any one of them can see it in its own.

The signal-counting industry alert (`network.py`) needs three practices to have detected the
change on their own, so it can only help the fourth. Here every practice contributes its
anonymised daily counts per payer (decided and denied lines under an HMAC tenant token,
nothing else) and the network runs one sequential test on their sum.

The test: a stratified binomial CUSUM (Page 1954) for a 1.5× rise in the payer's denial
rate. Each practice keeps its own baseline rate p_i (its 13 weeks before the chart), so a day
when a high-denial practice happens to submit more does not look like the payer changing:
the day's log-likelihood ratio is Σ_i [x_i ln θ + (n_i − x_i) ln((1 − θp_i)/(1 − p_i))],
divided by the Pearson dispersion of the pooled baseline days (quasi-likelihood, as in
DriftWatch's chart). Threshold h = ln(ARL₀) (Lorden 1971): ARL₀ = 3,650 days keeps this
test alone at ≤ 0.1 false alerts per payer-year of the network.

Privacy: a day enters the chart only when at least 5 practices with a baseline contributed
to it (`MIN_PRACTICES`); the verdict a practice receives says how many practices and the
pooled ratio, never who, and no practice's own counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np

from upstream.domain.aggregates import DailyCell
from upstream.domain.detect.stats import MAX_DISPERSION

MIN_PRACTICES = 5
SHIFT = 1.5
ARL0_DAYS = 3650
CHART_DAYS = 91
BASELINE_DAYS = 91
MIN_BASELINE_LINES = 30  # a practice's baseline rate needs this many decided lines

Counts = Mapping[str, tuple[float, float]]  # tenant token → (decided, denied) on one day


@dataclass(frozen=True)
class PooledVerdict:
    statistic: float
    threshold: float
    alarm: bool
    since: date | None  # the day the current run of evidence began
    practices: int  # practices in the chart (each with a baseline)
    days_tested: int
    observed: float  # pooled denials since `since`
    expected: float  # what the practices' baselines predict for the same lines
    dispersion: float

    @property
    def ratio(self) -> float | None:
        return self.observed / self.expected if self.expected else None


def pooled_test(daily: Mapping[date, Counts], run_day: date) -> PooledVerdict | None:
    """The chart over the `CHART_DAYS` before `run_day`, or None when fewer than
    `MIN_PRACTICES` practices have a baseline."""
    start = run_day - timedelta(days=CHART_DAYS)
    base_start = start - timedelta(days=BASELINE_DAYS)
    rates = _baselines(daily, base_start, start)
    if len(rates) < MIN_PRACTICES:
        return None
    phi = _dispersion(daily, rates, base_start, start)
    threshold = math.log(ARL0_DAYS)
    level, since, observed, expected, tested = 0.0, None, 0.0, 0.0, 0
    day = start
    while day < run_day:
        counts = {t: c for t, c in (daily.get(day) or {}).items() if t in rates}
        day += timedelta(days=1)
        if len(counts) < MIN_PRACTICES:
            continue  # not enough practices that day to pool without exposing one
        tested += 1
        step = sum(_llr(n, x, rates[t]) for t, (n, x) in counts.items()) / phi
        x_day = sum(x for _, x in counts.values())
        e_day = sum(n * rates[t] for t, (n, _) in counts.items())
        if level + step <= 0:
            level, since, observed, expected = 0.0, None, 0.0, 0.0
            continue
        if level == 0:
            since = day - timedelta(days=1)
        level += step
        observed += x_day
        expected += e_day
    return PooledVerdict(level, threshold, level > threshold, since, len(rates), tested,
                         observed, expected, phi)


def _baselines(daily: Mapping[date, Counts], first: date, end: date) -> dict[str, float]:
    decided: dict[str, float] = {}
    denied: dict[str, float] = {}
    for day, counts in daily.items():
        if first <= day < end:
            for tenant, (n, x) in counts.items():
                decided[tenant] = decided.get(tenant, 0.0) + n
                denied[tenant] = denied.get(tenant, 0.0) + x
    return {t: (denied[t] + 0.5) / (decided[t] + 1) for t in decided
            if decided[t] >= MIN_BASELINE_LINES and 0 < denied[t] < decided[t]}


def _llr(n: float, x: float, p0: float) -> float:
    p1 = min(0.99, SHIFT * p0)
    return x * math.log(p1 / p0) + (n - x) * math.log((1 - p1) / (1 - p0))


def _dispersion(daily: Mapping[date, Counts], rates: Mapping[str, float], first: date,
                end: date) -> float:
    """Pearson φ̂ of the pooled baseline days around the practices' own rates."""
    residuals = []
    for day, counts in daily.items():
        if not first <= day < end:
            continue
        used = [(n, x, rates[t]) for t, (n, x) in counts.items() if t in rates]
        if len(used) < MIN_PRACTICES:
            continue
        variance = sum(n * p * (1 - p) for n, _, p in used)
        if variance > 0:
            residuals.append((sum(x for _, x, _ in used) - sum(n * p for n, _, p in used)) ** 2
                             / variance)
    if len(residuals) < 3:
        return 1.0
    return float(min(MAX_DISPERSION, max(1.0, np.sum(residuals) / (len(residuals) - 1))))


def daily_counts(pool: Mapping[date, Mapping[str, Mapping[str, Any]]]) -> dict[date, Counts]:
    """The pool as the chart reads it: per day, per practice, (decided, denied)."""
    return {day: {tenant: (float(entry.get("decided") or 0), float(entry.get("denied") or 0))
                  for tenant, entry in entries.items()}
            for day, entries in pool.items()}


def network_cells(payer: str, pool: Mapping[date, Mapping[str, Mapping[str, Any]]]
                  ) -> list[DailyCell]:
    """The network's daily cells of one payer, summed over the practices, for the days at
    least `MIN_PRACTICES` contributed to (a smaller sum could expose one practice): what the
    network's payer fingerprint reads, as a practice's reads its own aggregates."""
    cells = []
    for day, entries in pool.items():
        if len(entries) < MIN_PRACTICES:
            continue
        counters: dict[str, float] = {}
        for entry in entries.values():
            for name in ("decided", "denied"):
                counters[name] = counters.get(name, 0.0) + float(entry.get(name) or 0)
            for lag, count in (entry.get("lag") or {}).items():
                counters[f"lag.{lag}"] = counters.get(f"lag.{lag}", 0.0) + float(count)
                counters["paid"] = counters.get("paid", 0.0) + float(count)
        cells.append(DailyCell(payer, day, counters))
    return cells
