"""KS against the rank test it was chosen over (prices) or replaced (lags), on the benchmark's
streams: `make bench-detect` prints this after the detectors' table.

Each variant replays only the detector concerned, over the streams with a change of its kind
and the null streams, once with each test; delays and false alerts per payer-year as in the
main table.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from datetime import date

import numpy as np
from detection_streams import Change
from scipy import stats as scipy_stats

from upstream.domain.aggregates import DailyCell
from upstream.domain.detect import delay, runner, stats, underpay
from upstream.domain.detect.findings import Alert

Score = Callable[[list[Alert], Change | None], tuple[int | None, int, str]]


def _expand(histogram: dict[int, float]) -> np.ndarray:
    counts = np.rint(list(histogram.values())).astype(int)
    return np.repeat(np.array(list(histogram), float), counts)


def mann_whitney_smaller(current: dict[int, float], baseline: dict[int, float]) -> float:
    x, y = _expand(current), _expand(baseline)
    if len(x) == 0 or len(y) == 0:
        return 1.0
    return float(scipy_stats.mannwhitneyu(x, y, alternative="less").pvalue)


VARIANTS = (
    ("unit price", "price", underpay, "ks_smaller_pvalue",
     (("Kolmogorov-Smirnov (ours)", stats.ks_smaller_pvalue),
      ("Mann-Whitney", mann_whitney_smaller))),
    ("payment lag", "lag", delay, "ks_larger_pvalue",
     (("Kolmogorov-Smirnov (ours)", stats.ks_larger_pvalue),
      ("Mann-Whitney (used before)", stats.shift_pvalue))),
)


def compare(cells: dict[int, list[DailyCell]], streams: list[tuple[int, Change | None]],
            first: date, last: date, payer_years_per_null: float, score: Score) -> None:
    saved = runner.DETECTORS[runner.MethodSet.OURS]
    try:
        for label, kind, module, function, tests in VARIANTS:
            chosen = [(seed, change) for seed, change in streams
                      if change is None or change.kind == kind]
            nulls = sum(1 for _, change in chosen if change is None)
            runner.DETECTORS[runner.MethodSet.OURS] = {
                runner.Schedule.DAILY: (), runner.Schedule.WEEKLY: (module.weekly_test,)}
            print(f"\n[{label}: the test compared] {len(chosen) - nulls} changes, {nulls} null "
                  "streams")
            for name, test in tests:
                setattr(module.stats, function, test)
                delays, false = [], 0
                for seed, change in chosen:
                    alerts = runner.backtest("bench", cells[seed], first, last)
                    found, wrong, _ = score(alerts, change)
                    if change is None:  # false alerts on the null streams only
                        false += wrong
                    else:
                        delays.append((change.name, found))
                found_days = [d for _, d in delays if d is not None]
                shown = ", ".join(f"{n.split(',')[0]}: {'missed' if d is None else d}"
                                  for n, d in delays)
                print(f"  {name:<26} detected {len(found_days)}/{len(delays)}, median delay "
                      f"{statistics.median(found_days) if found_days else float('nan'):.0f} "
                      f"days, false alerts {false / (nulls * payer_years_per_null):.3f} per "
                      f"payer-year  ({shown})")
            setattr(module.stats, function, tests[0][1])
    finally:
        runner.DETECTORS[runner.MethodSet.OURS] = saved
