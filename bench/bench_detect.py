"""Detection benchmark (`make bench-detect`): simulated streams with injected changes and null
streams, replayed through `backtest`, the seeds' rules and ours side by side.

Prints per method: events detected, the detection delay of each and their median (days from
the change to the alert's `created_at`), false alerts per payer-year (any alert on a payer
without a change, or on the changed payer before its change), and the false payment-delay
alerts raised within two weeks after a federal holiday (payers close; calendar-day lags
stretch). Asserts nothing. Goal: every event found, median delay ≤ 28 days, ≤ 0.2 false
alerts per payer-year, ≤ 0.1 false delay alerts per payer-year around holidays.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from detection_streams import (
    CHANGE_DAY,
    DETECTS,
    EVENTS,
    PAYERS,
    START,
    Change,
    simulate,
)
from distribution_tests import compare

from upstream.domain.calendar import federal_holidays
from upstream.domain.detect.findings import Alert
from upstream.domain.detect.runner import MethodSet, backtest

FALSE_BY_METHOD: dict[tuple[str, str], int] = {}
FALSE_BY_TYPE: dict[str, int] = {}
FALSE_DELAYS = {"all": 0, "around_holidays": 0}
HOLIDAY_AFTERMATH_DAYS = 14
NULL_STREAMS = int(os.environ.get("BENCH_NULL_STREAMS", "10"))
FIRST = START + timedelta(days=365)
LAST = START + timedelta(days=729)
DETECTION_HORIZON_DAYS = 90


def _score(alerts: list[Alert], change: Change | None) -> tuple[int | None, int, str]:
    """(delay in days or None, false alerts, what caught it) for one stream."""
    delay, false, how = None, 0, ""
    for alert in alerts:
        on_changed = change is not None and alert.payer == change.payer
        after = change is not None and alert.created_at >= change.start
        if change is not None and on_changed and after and alert.type in DETECTS[change.kind]:
            days = (alert.created_at - change.start).days
            if days <= DETECTION_HORIZON_DAYS and (delay is None or days < delay):
                delay, how = days, f"{alert.type} {alert.scope} by {'+'.join(alert.methods)}"
        elif not (on_changed and after):
            false += 1
            if alert.type == "payment_delay":
                FALSE_DELAYS["all"] += 1
                FALSE_DELAYS["around_holidays"] += _after_holiday(alert.created_at)
            key = ("+".join(alert.methods), alert.scope.split(":")[0])
            FALSE_BY_METHOD[key] = FALSE_BY_METHOD.get(key, 0) + 1
            FALSE_BY_TYPE[alert.type] = FALSE_BY_TYPE.get(alert.type, 0) + 1
    return delay, false, how


def _after_holiday(day: date) -> bool:
    return any(0 <= (day - h).days <= HOLIDAY_AFTERMATH_DAYS
               for y in (day.year - 1, day.year) for h in federal_holidays(y))


def main() -> None:
    streams = [(i, c) for i, c in enumerate(EVENTS)] + [
        (100 + i, None) for i in range(NULL_STREAMS)]
    started = time.perf_counter()
    cells = {seed: simulate(seed, change) for seed, change in streams}
    print(f"simulated {len(streams)} streams ({len(EVENTS)} with a change, {NULL_STREAMS} null),"
          f" {len(PAYERS)} payers, 2 years each, in {time.perf_counter() - started:.1f} s; "
          f"replaying {FIRST}..{LAST} (changes on {START + timedelta(CHANGE_DAY)})")
    payer_years = NULL_STREAMS * len(PAYERS) + len(EVENTS) * (len(PAYERS) - 1) + sum(
        (EVENTS[0].start - FIRST).days / 365 for _ in EVENTS)
    wanted = os.environ.get("BENCH_METHODS", "seeds,ours").split(",")
    for methods in [m for m in (MethodSet.SEEDS, MethodSet.OURS) if m.value in wanted]:
        started = time.perf_counter()
        delays: list[int | None] = []
        hows: list[str] = []
        false = 0
        by_type: dict[str, int] = {}
        for seed, change in streams:
            alerts = backtest("bench", cells[seed], FIRST, LAST, methods)
            delay, wrong, how = _score(alerts, change)
            false += wrong
            for alert in alerts:
                by_type[alert.type] = by_type.get(alert.type, 0) + 1
            if change is not None:
                delays.append(delay)
                hows.append(how)
        found = [d for d in delays if d is not None]
        print(f"\n[{methods.value}] replay {time.perf_counter() - started:.1f} s")
        for change, delay, how in zip(EVENTS, delays, hows, strict=True):
            print(f"  {change.name:<36} {'missed' if delay is None else f'{delay} days':>8}"
                  f"  {how}")
        median = statistics.median(found) if found else float("nan")
        print(f"  detected {len(found)}/{len(EVENTS)}, median delay {median:.0f} days, "
              f"false alerts {false} = {false / payer_years:.2f} per payer-year "
              f"({payer_years:.0f} payer-years); alerts by type {by_type}")
        print("  false alerts by method and scope: " + ", ".join(
            f"{method} {scope} {count}" for (method, scope), count in sorted(
                FALSE_BY_METHOD.items(), key=lambda item: -item[1])))
        print("  false alerts by type per payer-year: " + ", ".join(
            f"{kind} {count / payer_years:.3f}" for kind, count in sorted(FALSE_BY_TYPE.items())))
        print(f"  false payment-delay alerts {FALSE_DELAYS['all']} = "
              f"{FALSE_DELAYS['all'] / payer_years:.3f} per payer-year, of which within "
              f"{HOLIDAY_AFTERMATH_DAYS} days after a federal holiday "
              f"{FALSE_DELAYS['around_holidays']} = "
              f"{FALSE_DELAYS['around_holidays'] / payer_years:.3f} per payer-year")
        FALSE_BY_METHOD.clear()
        FALSE_BY_TYPE.clear()
        FALSE_DELAYS.update(all=0, around_holidays=0)
    if os.environ.get("BENCH_COMPARE_TESTS", "1") == "1":
        compare(cells, streams, FIRST, LAST, len(PAYERS), _score)


if __name__ == "__main__":
    main()
