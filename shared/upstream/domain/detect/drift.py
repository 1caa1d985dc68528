"""DriftWatch: a payer's denial rate moving up, per payer, payer×CPT and payer×CARC.

Three methods over the same aggregates:

- `seeds_rule` — the seeds' weekly test, kept as the floor and for comparison: 13-week
  baseline vs the last 7 days, Pearson chi-square p < 0.05, ≥ 10 lines in each period,
  MEDIUM ≥ 1.25×, HIGH ≥ 1.5×. Every cell at p < 0.05 every week: with a few hundred cells
  that is false alarms every week.
- `weekly_test` — same windows and floors, but each cell judged by the beta-binomial
  predictive p-value (exact at small counts; baseline uncertainty and week-to-week
  overdispersion as a design effect), over the last 7 and 28 days, and weighted
  Benjamini-Hochberg across every cell tested in the run at the level `run_fdr_level` sets
  from a false-alerts-per-payer-year budget. The seeds' 1.25× stays
  as the practical-significance floor.
- `daily_cusum` — a binomial CUSUM per payer (designed for a 1.5× shift, the seeds' HIGH) and
  per payer×CPT (2×) on daily counts over the last 13 weeks, with the threshold from Lorden's
  bound: it rings on the day the evidence is enough, not at the next Monday, and it adds up
  weeks of small excesses a one-week test cannot see.

References and constants: see `stats.py` and `common.py`.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

import numpy as np

from upstream.domain.aggregates import AggregateFrame
from upstream.domain.codes import cdt
from upstream.domain.detect import stats
from upstream.domain.detect.common import (
    HIGH_RATIO,
    MIN_LINES,
    Windows,
    dollars,
    rate,
    run_fdr_level,
    severity_for_ratio,
    top_codes,
)
from upstream.domain.detect.findings import Finding, Severity, Window

TYPE = "denial_rate_drift"
# A baseline needs more than one week's floor of lines before a rate can be called its normal.
MIN_BASELINE_LINES = 30
# The CUSUM accumulates evidence over up to 13 weeks (then the baseline moves on): a moderate
# shift at a small payer needs weeks of lines before it is distinguishable from noise.
WEEKLY_WINDOWS_DAYS = (7, 28)
CUSUM_DAYS = 91
CUSUM_SHIFT = HIGH_RATIO
CUSUM_CELL_SHIFT = 2.0
# A CUSUM assumes its in-control rate is known; estimated from a short baseline it is often
# off, and the chart then drifts up on nothing (Jones, Champ & Rigdon (2004),
# *Technometrics* 46:87). So a payer's chart runs only once its data covers the whole
# 13-week baseline. (A guarded reference, the baseline's upper credible bound, was measured
# too: at the 75% bound it halves false alarms and loses two of nine detections.)
# In-control average run length: fourteen years of business days per payer, so the CUSUM
# alone raises ≤ 0.07 false alerts per payer-year (Lorden: ARL₀ ≥ e^h), its share of the
# product's 0.2 (the weekly tests of all detectors share the rest). Measured on `make
# bench-detect`: ten years (2,500) gave 0.21 overall; 3,650 gives 0.196 and costs the 1.5×
# rise at the largest payer 13 days (44 → 57); no other event moved.
CUSUM_ARL0_DAYS = 3650
# A CPT or CARC cell is a slice of the payer: a rate ratio on it can be large on a handful of
# lines ("CO-29: 5% vs 0%"). It must also be worth a biller's hour: at least this many denials
# beyond what the baseline rate predicts (five lines are re-worked in about an hour), and a
# cell with no denial in its whole baseline (a reason code appearing) needs the seeds' 10
# lines of its own before it is called a rate, and is MEDIUM at most: a new code is worth a
# look, its size is DenialScope's to judge in dollars.
MIN_CELL_EXCESS_DENIALS = 5


def _cells(frame: AggregateFrame, payer: str) -> list[tuple[str, str, str]]:
    """(scope, denied counter, decided counter) for every cell of a payer."""
    series = frame.payers[payer]
    cells = [("payer", "denied", "decided")]
    cells += [(f"cpt:{c}", f"cpt.{c}.denied", f"cpt.{c}.decided") for c in series.names("cpt")]
    cells += [(f"carc:{c}", f"carc.{c}.denied", "decided") for c in series.names("carc")]
    cells += [(f"family:{f}", f"family.{f}.denied", f"family.{f}.decided")
              for f in series.names("family")]
    return cells


def _counts(frame: AggregateFrame, payer: str, denied: str, decided: str,
            windows: Windows) -> tuple[float, float, float, float]:
    return (frame.window(payer, denied, windows.current_start, windows.end),
            frame.window(payer, decided, windows.current_start, windows.end),
            frame.window(payer, denied, windows.baseline_start, windows.current_start),
            frame.window(payer, decided, windows.baseline_start, windows.current_start))


def _finding(frame: AggregateFrame, payer: str, scope: str, windows: Windows,
             counts: tuple[float, float, float, float], severity: str, method: str,
             test: dict[str, Any]) -> Finding:
    x, n, x0, n0 = counts
    current, baseline = rate(x, n) or 0.0, rate(x0, n0) or 0.0
    ratio = current / baseline if baseline else float("inf")
    where = payer if scope == "payer" else f"{payer}, {scope_label(scope)}"
    denied_cents = frame.window(payer, "denied_cents", windows.current_start, windows.end)
    return Finding(
        type=TYPE, payer=payer, scope=scope, severity=Severity(severity), method=method,
        title=(f"{where}: denial rate {current:.0%} vs {baseline:.0%} baseline" if x0 else
               f"{where}: {int(x)} denials in {(windows.end - windows.current_start).days} days,"
               f" none in the {(windows.current_start - windows.baseline_start).days // 7} "
               "weeks before"),
        summary=(f"{int(x)} of {int(n)} lines denied from {windows.current_start} to "
                 f"{windows.end - timedelta(days=1)} ({current:.1%}), against {baseline:.1%} "
                 f"in the {(windows.current_start - windows.baseline_start).days // 7} weeks "
                 "before"
                 + (f" ({ratio:.1f}×)." if baseline else ".")),
        metrics={"current_rate": current, "baseline_rate": baseline,
                 "ratio": round(ratio, 2) if baseline else None, "current_denied": int(x),
                 "current_decided": int(n), "baseline_denied": int(x0),
                 "baseline_decided": int(n0), **test},
        evidence={**top_codes(frame, payer, windows),
                  "denied_dollars_current_week": dollars(denied_cents)},
        recommended_actions=_actions(scope),
        window=windows.model())


def scope_label(scope: str) -> str:
    """`cpt:97153` → `cpt 97153`; a dental family → its name (`Periodontics (dental)`)."""
    kind, _, code = scope.partition(":")
    if kind == "family":
        return f"{cdt.LABELS.get(code, code)} (dental)"
    return f"{kind} {code}"


def _actions(scope: str) -> list[str]:
    actions = ["Pull the denied lines of the last 7 days for this payer and read the remark "
               "codes on the remittances.",
               "Check the payer's bulletins for policy or edit changes in the period."]
    if scope.startswith("cpt:"):
        actions.insert(0, f"Review the payer's current rules for CPT {scope[4:]} (modifiers, "
                          "units, authorization).")
    if scope.startswith("carc:"):
        actions.insert(0, f"Work the {scope[5:]} denials first: see the CARC's corrective "
                          "action in the evidence.")
    if scope.startswith("family:"):
        actions.insert(0, f"Compare the denied {scope_label(scope)} codes with the payer's "
                          "frequency limits, waiting periods and documentation rules for them.")
    return actions


def seeds_rule(frame: AggregateFrame, run_day: date) -> list[Finding]:
    windows = Windows.weekly(run_day)
    found = []
    for payer in frame.payers:
        for scope, denied, decided in _cells(frame, payer):
            counts = _counts(frame, payer, denied, decided, windows)
            x, n, x0, n0 = counts
            if n < MIN_LINES or n0 < MIN_LINES or x0 == 0:
                continue
            severity = severity_for_ratio((x / n) / (x0 / n0))
            p_value = stats.chi_square_pvalue(x, n, x0, n0)
            if severity and p_value < 0.05:
                found.append(_finding(frame, payer, scope, windows, counts, severity,
                                      "seeds_chi_square", {"p_value": round(p_value, 6)}))
    return found


def weekly_test(frame: AggregateFrame, run_day: date) -> list[Finding]:
    """Each cell over the last 7 and the last 28 days (a moderate shift at a mid-size payer
    is invisible in one week and plain in four), both looks in one BH family."""
    tested: list[tuple[str, str, Windows, tuple[float, float, float, float], float, float]] = []
    for days in WEEKLY_WINDOWS_DAYS:
        windows = Windows.weekly(run_day, days)
        for payer in frame.payers:
            for scope, denied, decided in _cells(frame, payer):
                counts = _counts(frame, payer, denied, decided, windows)
                x, n, x0, n0 = counts
                if n < MIN_LINES or n0 < MIN_BASELINE_LINES:
                    continue
                weekly_x = [frame.window(payer, denied, a, b) for a, b in windows.weeks()]
                weekly_n = [frame.window(payer, decided, a, b) for a, b in windows.weeks()]
                deff = stats.dispersion(weekly_x, weekly_n)
                tested.append((payer, scope, windows, counts, deff,
                               stats.rate_increase_pvalue(x, n, x0, n0, deff)))
    q = run_fdr_level(len(frame.payers))
    # Payer-level rates are what a director acts on first: half the budget goes to them, the
    # other half to the hundreds of CPT and CARC cells (weighted BH).
    weights = stats.split_weights([t[1] == "payer" for t in tested])
    rejected = stats.benjamini_hochberg([t[5] for t in tested], q, weights)
    found = []
    for (payer, scope, windows, counts, deff, p_value), reject in zip(tested, rejected,
                                                                      strict=True):
        x, n, x0, n0 = counts
        baseline = (x0 + 0.5) / (n0 + 1)
        severity = severity_for_ratio((x / n) / baseline)
        if scope != "payer":
            severity = _cell_severity(severity, x, n, x0, n0)
        if reject and severity:
            found.append(_finding(frame, payer, scope, windows, counts, severity,
                                  "weekly_beta_binomial_bh",
                                  {"p_value": p_value, "fdr_level": round(q, 4),
                                   "cells_tested": len(tested), "design_effect": round(deff, 3),
                                   "window_days": (windows.end - windows.current_start).days}))
    return found


def _cell_severity(severity: str | None, x: float, n: float, x0: float,
                   n0: float) -> str | None:
    """The floors of a CPT or CARC cell (see MIN_CELL_EXCESS_DENIALS)."""
    if severity is None or x - n * (x0 / n0) < MIN_CELL_EXCESS_DENIALS:
        return None
    if x0 == 0:
        return "MEDIUM" if x >= MIN_LINES else None
    return severity


def daily_cusum(frame: AggregateFrame, run_day: date) -> list[Finding]:
    """Per payer (designed for 1.5×) and per payer×CPT (designed for 2×: a single code needs
    a larger move to matter). The payer's false-alarm budget is split Bonferroni-style: half
    to its payer-level chart, h = ln(2·ARL₀), half shared by its CPT charts,
    h = ln(2·ARL₀·cells); cheap, because h grows with the log. The alarm needs the statistic
    above h on the run's last day of data."""
    found: list[Finding] = []
    start = run_day - timedelta(days=CUSUM_DAYS)
    baseline_start = start - timedelta(weeks=13)
    lo, hi = frame.index(start), min(frame.days, frame.index(run_day))
    b_lo = max(0, frame.index(baseline_start))
    if lo < 1 or hi <= lo:
        return found
    for payer, series in frame.payers.items():
        seen = series.get("decided", frame.days).nonzero()[0]
        if len(seen) == 0 or int(seen[0]) > b_lo:
            continue  # history shorter than the baseline
        codes = series.names("cpt")
        cells = [("payer", "denied", "decided", CUSUM_SHIFT, math.log(2 * CUSUM_ARL0_DAYS))] + [
            (f"cpt:{c}", f"cpt.{c}.denied", f"cpt.{c}.decided", CUSUM_CELL_SHIFT,
             math.log(2 * CUSUM_ARL0_DAYS * len(codes))) for c in codes]
        for scope, denied_name, decided_name, shift, threshold in cells:
            denied = series.get(denied_name, frame.days)
            decided = series.get(decided_name, frame.days)
            x0, n0 = denied[b_lo:lo], decided[b_lo:lo]
            if n0.sum() < MIN_BASELINE_LINES or x0.sum() == 0:
                continue
            p0 = float((x0.sum() + 0.5) / (n0.sum() + 1))
            p1 = min(0.99, p0 * shift)
            if p1 <= p0:
                continue
            path = stats.binomial_cusum(denied[lo:hi], decided[lo:hi], p0, p1,
                                        stats.dispersion(x0, n0))
            if len(path) == 0 or path[-1] <= threshold:
                continue
            zeros = np.flatnonzero(path == 0)
            opened = int(zeros[-1]) + 1 if len(zeros) else 0
            first = start + timedelta(days=opened)
            x, n = float(denied[lo + opened:hi].sum()), float(decided[lo + opened:hi].sum())
            if n < MIN_LINES:
                continue
            severity = severity_for_ratio((x / n) / p0) or "MEDIUM"
            if scope != "payer" and x - n * p0 < MIN_CELL_EXCESS_DENIALS:
                continue  # a CPT cell's alarm must be worth a biller's hour, as weekly
            windows = Windows(baseline_start, first, run_day)
            finding = _finding(frame, payer, scope, windows, (x, n, x0.sum(), n0.sum()),
                               severity, "daily_binomial_cusum",
                               {"cusum": round(float(path[-1]), 2),
                                "threshold": round(threshold, 2),
                                "shift_since": first.isoformat()})
            found.append(finding.model_copy(update={"window": Window(
                baseline_start=baseline_start, baseline_end=start - timedelta(days=1),
                current_start=first, current_end=run_day - timedelta(days=1))}))
    return found
