"""Network benchmark (`make bench-network`): ten simulated practices of different sizes share
one payer whose denial rate rises 1.5×. For each practice: the delay to its first warning
from its own detectors, and from the pooled network test (`network_pool.py`); then the
network test's false alerts per payer-year on every payer that did not change (the other
payers of that network and of null networks). Prints figures; asserts nothing.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from detection_streams import DETECTS, PAYERS, START, Change, simulate

from upstream.domain.aggregates import DailyCell
from upstream.domain.detect.network_pool import Counts, pooled_test
from upstream.domain.detect.runner import backtest

SCALES = (0.05, 0.08, 0.1, 0.15, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0)
SHARED = "Big Commercial"  # 40 lines a business day at scale 1: 2 to 40 across the practices
CHANGE = Change("network rate ×1.5", "rate", SHARED, 1.5)
NULL_NETWORKS = int(os.environ.get("BENCH_NULL_NETWORKS", "3"))
FIRST = START + timedelta(days=365)
LAST = START + timedelta(days=729)
HORIZON_DAYS = 90


Pool = dict[str, dict[date, dict[str, tuple[float, float]]]]


def pooled(networks: list[list[DailyCell]]) -> Pool:
    """payer → day → tenant → (decided, denied): what the practices contribute."""
    daily: Pool = defaultdict(dict)
    for index, cells in enumerate(networks):
        for cell in cells:
            decided = float(cell.counters.get("decided", 0))
            if decided:
                daily[cell.payer].setdefault(cell.day, {})[f"t{index}"] = (
                    decided, float(cell.counters.get("denied", 0)))
    return daily


def alarms(daily: Mapping[date, Counts]) -> list[date]:
    """Run days on which a new network alarm episode starts (the chart crossed h after being
    below it the day before)."""
    found, ringing, day = [], False, FIRST
    while day <= LAST:
        verdict = pooled_test(daily, day)
        now = bool(verdict and verdict.alarm)
        if now and not ringing:
            found.append(day)
        ringing = now
        day += timedelta(days=1)
    return found


def own_delay(cells: list[DailyCell]) -> int | None:
    best = None
    for alert in backtest("bench", cells, FIRST, LAST):
        if alert.payer == SHARED and alert.type in DETECTS["rate"] \
                and alert.created_at >= CHANGE.start:
            days = (alert.created_at - CHANGE.start).days
            if days <= HORIZON_DAYS and (best is None or days < best):
                best = days
    return best


def main() -> None:
    started = time.perf_counter()
    practices = [simulate(500 + i, CHANGE, scale) for i, scale in enumerate(SCALES)]
    nulls = [[simulate(900 + 20 * k + i, None, scale) for i, scale in enumerate(SCALES)]
             for k in range(NULL_NETWORKS)]
    print(f"simulated {len(SCALES)} practices sharing {SHARED} (×1.5 from {CHANGE.start}) and "
          f"{NULL_NETWORKS} null networks of {len(SCALES)} in "
          f"{time.perf_counter() - started:.0f} s")

    started = time.perf_counter()
    daily = pooled(practices)
    rings = alarms(daily[SHARED])
    after = [d for d in rings if d >= CHANGE.start]
    network = (after[0] - CHANGE.start).days if after and \
        (after[0] - CHANGE.start).days <= HORIZON_DAYS else None
    false = len(rings) - len(after)
    payer_years = (CHANGE.start - FIRST).days / 365
    for payer, _, _, _ in PAYERS:
        if payer != SHARED:
            false += len(alarms(daily[payer]))
            payer_years += (LAST - FIRST).days / 365
    for null in nulls:
        for series in pooled(null).values():
            false += len(alarms(series))
            payer_years += (LAST - FIRST).days / 365
    print(f"network test over {payer_years:.0f} payer-years in "
          f"{time.perf_counter() - started:.0f} s: change found "
          f"{'never' if network is None else f'after {network} days'}; false alerts "
          f"{false} = {false / payer_years:.3f} per payer-year")

    started = time.perf_counter()
    earlier = []
    print(f"\n  {'practice':<10} {'lines/day':>9} {'own':>8} {'network':>8} {'first':>8} "
          f"{'earlier':>8}")
    for index, (scale, cells) in enumerate(zip(SCALES, practices, strict=True)):
        own = own_delay(cells)
        first = min(d for d in (own, network) if d is not None) \
            if own is not None or network is not None else None
        gain = None
        if network is not None:
            gain = (own if own is not None else HORIZON_DAYS) - network
            earlier.append(gain)
        print(f"  t{index:<9} {40 * scale:>9.0f} {str(own) if own is not None else 'missed':>8} "
              f"{str(network) if network is not None else 'missed':>8} "
              f"{str(first) if first is not None else 'missed':>8} "
              f"{str(gain) if gain is not None else '-':>8}")
    if earlier:
        print(f"\n  median days earlier per practice: {statistics.median(earlier):.0f} "
              f"(a practice whose own detectors missed it within {HORIZON_DAYS} days counts "
              f"as {HORIZON_DAYS}); own replays in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
