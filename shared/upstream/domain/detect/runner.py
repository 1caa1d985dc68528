"""Which detectors run when, and the offline replay of that schedule (`backtest`).

Production schedule (Cloud Scheduler → `detector-runs`): `daily` every day at 06:00 UTC (the
sequential drift test and the authorization calendar), `weekly` on Mondays (the weekly tests).
The seeds' rules run weekly only, as the seeds specify; they are kept for comparison
(`--method seeds`), not run in production.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, timedelta
from enum import StrEnum

from upstream.domain.aggregates import AggregateFrame, DailyCell, build_frame
from upstream.domain.detect import delay, dollars, drift, sparse, underpay
from upstream.domain.detect.findings import Alert, Finding, merge_into_alerts

Detector = Callable[[AggregateFrame, date], list[Finding]]


class Schedule(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


class MethodSet(StrEnum):
    OURS = "ours"
    SEEDS = "seeds"


DETECTORS: dict[MethodSet, dict[Schedule, tuple[Detector, ...]]] = {
    MethodSet.OURS: {Schedule.DAILY: (drift.daily_cusum,),
                     Schedule.WEEKLY: (drift.weekly_test, dollars.weekly_test,
                                       sparse.weekly_test, delay.weekly_test,
                                       underpay.weekly_test)},
    MethodSet.SEEDS: {Schedule.DAILY: (),
                      Schedule.WEEKLY: (drift.seeds_rule, dollars.seeds_rule,
                                        delay.seeds_rule)},
}
WEEKLY_RUN_DAY = 0  # Monday
# Enough history for the longest lookback: 13 baseline weeks + 3 trend weeks + CUSUM window.
LOOKBACK_DAYS = 7 * 16 + drift.CUSUM_DAYS


def lookback_start(run_day: date) -> date:
    return run_day - timedelta(days=LOOKBACK_DAYS)


def run_findings(frame: AggregateFrame, run_day: date, schedule: Schedule,
                 methods: MethodSet = MethodSet.OURS) -> list[Finding]:
    """A weekly run includes the daily detectors too (one run on Mondays, not two)."""
    detectors = list(DETECTORS[methods][Schedule.DAILY])
    if schedule is Schedule.WEEKLY:
        detectors += DETECTORS[methods][Schedule.WEEKLY]
    return [finding for detector in detectors for finding in detector(frame, run_day)]


def backtest(customer_id: str, cells: Iterable[DailyCell], first: date, last: date,
             methods: MethodSet = MethodSet.OURS) -> list[Alert]:
    """Replays the schedule over [first, last]: each run sees cells decided before its day
    only. Returns every alert as last written, `created_at` = the run that raised it."""
    frame = build_frame(cells)
    alerts: dict[str, Alert] = {}
    day = first
    while day <= last:
        weekly = day.weekday() == WEEKLY_RUN_DAY
        if weekly or DETECTORS[methods][Schedule.DAILY]:
            schedule = Schedule.WEEKLY if weekly else Schedule.DAILY
            findings = run_findings(frame, day, schedule, methods)
            for alert in merge_into_alerts(customer_id, findings, alerts.values(), day):
                alerts[alert.alert_id] = alert
        day += timedelta(days=1)
    return sorted(alerts.values(), key=lambda a: (a.created_at, a.alert_id))
