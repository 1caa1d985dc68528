"""DenialScope: denied-dollar spikes per payer, payer×CPT and payer×CARC against the cell's
own weeks.

Test: the current week's denied dollars against a one-sided t prediction interval of the 13
baseline weeks on log1p scale (Hahn & Meeker), Benjamini-Hochberg across the cells of the run
at `run_fdr_level`. Floors, each with its reason: a cell needs denials in at least half of its
baseline weeks (otherwise there is no distribution to compare with, only zeros), the seeds' 10
decided lines in the current week, a spike ≥ 1.5× the baseline weekly mean (the seeds' HIGH
ratio; smaller dollar moves are DriftWatch's business), and ≥ $500 at risk (below that nobody
should be interrupted). The seeds' variant (`seeds_rule`) flags any week above 1.5× the mean.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import numpy as np

from upstream.domain.aggregates import AggregateFrame
from upstream.domain.codes.catalogue import describe_carc
from upstream.domain.detect import stats
from upstream.domain.detect.common import (
    BASELINE_WEEKS,
    HIGH_RATIO,
    MIN_LINES,
    Windows,
    dollars,
    run_fdr_level,
    top_codes,
)
from upstream.domain.detect.findings import Finding, Severity

TYPE = "denial_dollar_spike"
SPIKE_RATIO = HIGH_RATIO
MIN_AT_RISK_CENTS = 50_000
MIN_ACTIVE_WEEKS = (BASELINE_WEEKS + 1) // 2


def _cells(frame: AggregateFrame, payer: str) -> list[tuple[str, str]]:
    series = frame.payers[payer]
    return ([("payer", "denied_cents")]
            + [(f"cpt:{code}", f"cpt.{code}.denied_cents") for code in series.names("cpt")]
            + [(f"carc:{code}", f"carc.{code}.denied_cents") for code in series.names("carc")])


def _measure(frame: AggregateFrame, payer: str, counter: str, windows: Windows,
             ) -> tuple[float, np.ndarray] | None:
    if frame.window(payer, "decided", windows.current_start, windows.end) < MIN_LINES:
        return None
    weekly = np.array([frame.window(payer, counter, a, b) for a, b in windows.weeks()])
    if (weekly > 0).sum() < MIN_ACTIVE_WEEKS:
        return None
    return frame.window(payer, counter, windows.current_start, windows.end), weekly


def _finding(frame: AggregateFrame, payer: str, scope: str, windows: Windows, current: float,
             weekly: np.ndarray, method: str, extra: dict[str, float]) -> Finding:
    mean = float(weekly.mean())
    ratio = current / mean if mean else float("inf")
    where = payer if scope == "payer" else f"{payer}, {scope.replace(':', ' ')}"
    evidence: dict[str, Any] = dict(top_codes(frame, payer, windows))
    if scope.startswith("carc:"):
        evidence["reason"] = describe_carc(scope[5:])
    return Finding(
        type=TYPE, payer=payer, scope=scope, method=method,
        severity=Severity.HIGH if ratio >= 2 else Severity.MEDIUM,
        title=f"{where}: ${dollars(current):,.0f} denied this week vs ${dollars(mean):,.0f} "
              "a typical week",
        summary=(f"Denied dollars for {where} reached ${dollars(current):,.2f} in the last 7 "
                 f"days, {ratio:.1f}× the 13-week average; ${dollars(current - mean):,.2f} "
                 "more than usual is at risk."),
        metrics={"current_denied_dollars": dollars(current),
                 "baseline_weekly_mean_dollars": dollars(mean),
                 "baseline_weekly_max_dollars": dollars(float(weekly.max())),
                 "ratio": round(ratio, 2), "dollars_at_risk": dollars(current - mean), **extra},
        evidence=evidence,
        recommended_actions=[
            "Sort this week's denials for the payer by amount and work the largest first.",
            "Check whether one expensive code or one reason code explains the spike "
            "(see evidence) and fix it at the source before the next submission."],
        window=windows.model())


def _eligible(frame: AggregateFrame, windows: Windows,
              ) -> Iterator[tuple[str, str, float, np.ndarray]]:
    """(payer, scope, current dollars, baseline weekly dollars) of every cell with enough
    history to be judged."""
    for payer in frame.payers:
        for scope, counter in _cells(frame, payer):
            measured = _measure(frame, payer, counter, windows)
            if measured is not None:
                yield payer, scope, *measured


def weekly_test(frame: AggregateFrame, run_day: date) -> list[Finding]:
    windows = Windows.weekly(run_day)
    tested = [(payer, scope, current, weekly, stats.upper_prediction_pvalue(current, weekly))
              for payer, scope, current, weekly in _eligible(frame, windows)]
    q = run_fdr_level(len(frame.payers))
    rejected = stats.benjamini_hochberg([t[4] for t in tested], q)
    # Every eligible cell is in the BH family; the practical floor applies after it.
    return [_finding(frame, payer, scope, windows, current, weekly, "weekly_prediction_bh",
                     {"p_value": p_value, "fdr_level": round(q, 4)})
            for (payer, scope, current, weekly, p_value), reject
            in zip(tested, rejected, strict=True)
            if reject and current - weekly.mean() >= MIN_AT_RISK_CENTS
            and current >= SPIKE_RATIO * weekly.mean()]


def seeds_rule(frame: AggregateFrame, run_day: date) -> list[Finding]:
    windows = Windows.weekly(run_day)
    return [_finding(frame, payer, scope, windows, current, weekly, "seeds_spike_ratio", {})
            for payer, scope, current, weekly in _eligible(frame, windows)
            if current >= SPIKE_RATIO * weekly.mean() > 0]
