"""Sparse cells: a rare, expensive code at one payer going from almost never to mostly denied.

Why a test of its own: such a code is billed about once a week, so DriftWatch never has its
10 lines a week (or four), its CUSUM sees too few, and DenialScope's weekly test needs denials
in half of the baseline weeks; yet each denial is thousands of dollars. Here a payer×CPT cell
with fewer than the seeds' 10 lines in the last 28 days is judged over the last 70 days (a
weekly code's 10 lines), its
denials against a beta-binomial predictive whose prior is shrunk toward the payer's overall
denial rate (empirical Bayes: Gelman et al., *Bayesian Data Analysis* 3rd ed., §5.1; the same
predictive as `stats.rate_increase_pvalue`, with the payer's rate in place of Jeffreys'
prior). The shrinkage is what makes a zero baseline safe: a code with no denial in 13 weeks
is not taken to be never denied, only as rarely denied as the payer's lines are, less what its
own clean weeks say.

Which cells: sparse ones whose lines cost at least EXPENSIVE_RATIO times the payer's average
line over the baseline (a cheap sparse code cannot put $500 at risk in a few denials, and
leaving it out keeps the family small, so the few cells that matter keep their power).
Multiple testing: those cells of the run in one Benjamini-Hochberg family at
`run_fdr_level`, like DenialScope. Floors: at least 3 denials in the window (two denials of a
weekly code can be one patient's claim resubmitted), and the denied dollars beyond what the
baseline rate predicts at least DenialScope's $500.
"""

from __future__ import annotations

from datetime import date

from scipy import stats as scipy_stats

from upstream.domain.aggregates import AggregateFrame
from upstream.domain.detect import stats
from upstream.domain.detect.common import (
    MIN_LINES,
    Windows,
    dollars,
    run_fdr_level,
    top_codes,
)
from upstream.domain.detect.dollars import MIN_AT_RISK_CENTS, TYPE
from upstream.domain.detect.findings import Finding, Severity

# A code billed about once a week reaches the seeds' minimum sample of 10 lines in 10 weeks.
WINDOW_DAYS = 7 * MIN_LINES
DENSE_DAYS = 28  # a cell with MIN_LINES in these days is DriftWatch's
# The prior weighs as much as the smallest sample the seeds would judge (10 lines).
PRIOR_LINES = 10
MIN_DENIALS = 3
# One denial of such a code weighs like four ordinary ones in the payer's denied dollars.
EXPENSIVE_RATIO = 4.0


def shrunk_pvalue(denied: float, decided: float, baseline_denied: float,
                  baseline_decided: float, prior_rate: float) -> float:
    """P(X ≥ denied) of `decided` new lines under the beta-binomial predictive of a baseline
    whose prior is Beta(m·r, m·(1 − r)), m = PRIOR_LINES, r = the payer's rate."""
    n, x = round(decided), round(denied)
    if n <= 0 or x <= 0:
        return 1.0
    rate = min(max(prior_rate, 1e-3), 0.999)
    a = baseline_denied + PRIOR_LINES * rate
    b = baseline_decided - baseline_denied + PRIOR_LINES * (1 - rate)
    return float(scipy_stats.betabinom.sf(x - 1, n, a, b))


def weekly_test(frame: AggregateFrame, run_day: date) -> list[Finding]:
    windows = Windows.weekly(run_day, WINDOW_DAYS)
    dense_start = date.fromordinal(run_day.toordinal() - DENSE_DAYS)
    tested: list[tuple[str, str, tuple[float, float, float, float], float, float]] = []
    for payer, series in frame.payers.items():
        payer_n = frame.window(payer, "decided", windows.baseline_start, windows.current_start)
        payer_x = frame.window(payer, "denied", windows.baseline_start, windows.current_start)
        if payer_n < MIN_LINES:
            continue
        typical_line = frame.window(payer, "billed_cents", windows.baseline_start,
                                    run_day) / max(1.0, frame.window(
                                        payer, "decided", windows.baseline_start, run_day))
        for code in series.names("cpt"):
            if frame.window(payer, f"cpt.{code}.decided", dense_start, run_day) >= MIN_LINES:
                continue
            lines = frame.window(payer, f"cpt.{code}.decided", windows.baseline_start, run_day)
            billed = frame.window(payer, f"cpt.{code}.billed_cents", windows.baseline_start,
                                  run_day)
            if not lines or billed / lines < EXPENSIVE_RATIO * typical_line:
                continue
            x, n, x0, n0 = counts = (
                frame.window(payer, f"cpt.{code}.denied", windows.current_start, run_day),
                frame.window(payer, f"cpt.{code}.decided", windows.current_start, run_day),
                frame.window(payer, f"cpt.{code}.denied", windows.baseline_start,
                             windows.current_start),
                frame.window(payer, f"cpt.{code}.decided", windows.baseline_start,
                             windows.current_start))
            if n <= 0:
                continue
            prior = payer_x / payer_n
            tested.append((payer, code, counts, prior,
                           shrunk_pvalue(x, n, x0, n0, prior)))
    q = run_fdr_level(len(frame.payers))
    rejected = stats.benjamini_hochberg([t[4] for t in tested], q)
    found = []
    for (payer, code, counts, prior, p_value), reject in zip(tested, rejected, strict=True):
        x, n, x0, n0 = counts
        expected_rate = (x0 + PRIOR_LINES * prior) / (n0 + PRIOR_LINES)
        denied_cents = frame.window(payer, f"cpt.{code}.denied_cents", windows.current_start,
                                    run_day)
        price = denied_cents / x if x else 0.0
        excess = denied_cents - n * expected_rate * price
        if reject and x >= MIN_DENIALS and excess >= MIN_AT_RISK_CENTS:
            found.append(_finding(frame, payer, code, windows, counts, expected_rate,
                                  denied_cents, excess, p_value, q))
    return found


def _finding(frame: AggregateFrame, payer: str, code: str, windows: Windows,
             counts: tuple[float, float, float, float], expected_rate: float,
             denied_cents: float, excess_cents: float, p_value: float, q: float) -> Finding:
    x, n, x0, n0 = counts
    weeks = WINDOW_DAYS // 7
    return Finding(
        type=TYPE, payer=payer, scope=f"cpt:{code}", method="sparse_cell_shrunk_bh",
        severity=Severity.HIGH if x / n >= 2 * expected_rate else Severity.MEDIUM,
        title=(f"{payer}, CPT {code}: {int(x)} of {int(n)} lines denied in {weeks} weeks "
               f"(${dollars(denied_cents):,.0f}); usually about 1 in "
               f"{max(1, round(1 / expected_rate)) if expected_rate else 'many'}"),
        summary=(f"CPT {code} is billed to {payer} only a few times a month, and "
                 f"{int(x)} of its last {int(n)} lines were denied, "
                 f"${dollars(excess_cents):,.0f} more than its history predicts "
                 f"({int(x0)} of {int(n0)} denied in the 13 weeks before)."),
        metrics={"current_denied": int(x), "current_decided": int(n),
                 "baseline_denied": int(x0), "baseline_decided": int(n0),
                 "expected_rate": round(expected_rate, 4),
                 "current_denied_dollars": dollars(denied_cents),
                 "dollars_at_risk": dollars(excess_cents), "p_value": p_value,
                 "fdr_level": round(q, 4), "window_days": WINDOW_DAYS},
        evidence=dict(top_codes(frame, payer, windows)),
        recommended_actions=[
            f"Pull the denied {code} lines and read the payer's reason on each remittance.",
            f"Check the payer's current policy for {code} (prior authorization, coverage, "
            "documentation) before billing the next one."],
        window=windows.model())
