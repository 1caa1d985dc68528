"""DelayGuard: a payer paying later (days from submission to decision, paid lines).

- `seeds_rule`: weekly medians w1 (last 7 days), w2, w3; alert when w1 > w2 > w3 and
  w1 − w3 > 7 days, or w1 > 1.3× the 13-week baseline median.
- `weekly_test`: the last 7 and the last 14 days' lags, each against the 13 weeks before
  them, one-sided two-sample Kolmogorov-Smirnov (`stats.ks_larger_pvalue`: distribution-free,
  robust to the long right tail of lags, and it sees a slowdown of a slice of claims that
  leaves the median alone), Benjamini-Hochberg across payers and windows at `run_fdr_level`,
  with a 1.2× median ratio and at least 3 days of shift as the practical floor (a shorter
  shift is inside one weekly check run). Lag is measured only when a line is decided, so a
  slowdown shows first as a week of late decisions (the 7-day window); smaller payers need
  two weeks of lines (the 14-day window).

Lags are tested in business days (weekends and US federal holidays out, `calendar.py`) where
the aggregates hold them: a claim submitted before Christmas waits through two closed days
that are not the payer slowing down, and in calendar days the holiday weeks alone raised about
0.9 false alerts per payer-year. The title then says "business days", and the cash figure
converts five of them to a week.

Why KS rather than the Mann-Whitney U this detector used first: on the benchmark's streams
(`make bench-detect`, "payment lag: the test compared") both found the ×1.5 and ×1.8 lag
changes in the same 27 days, and KS raised 0.025 false payment-delay alerts per payer-year
on the null streams against Mann-Whitney's 0.067. Lags are whole days with heavy ties, where
KS is conservative and the rank test reacts to small shifts of the whole mass (a holiday
week's backlog).

Cash-flow impact, as the seeds define it: extra days / 7 × average weekly paid dollars.
"""

from __future__ import annotations

from datetime import date, timedelta

from upstream.domain.aggregates import AggregateFrame
from upstream.domain.detect import stats
from upstream.domain.detect.common import (
    BASELINE_WEEKS,
    dollars,
    run_fdr_level,
)
from upstream.domain.detect.findings import Finding, Severity, Window

TYPE = "payment_delay"
SEEDS_RATIO = 1.3
SEEDS_TREND_DAYS = 7
MIN_SHIFT_DAYS = 3
# Our practical floor on the median ratio: below a fifth, a slowdown is within the swing that
# holiday weeks put into payer processing. Lower than the seeds' 1.3× because the rank test,
# not the ratio, decides; the ratio only keeps trivial shifts of large payers out.
MIN_RATIO = 1.2
MIN_CURRENT_PAID = 20
WINDOW_WEEKS = (1, 2)
MIN_BASELINE_PAID = 50
# Lags seen in a payer's first weeks of data are truncated (nothing submitted before the data
# starts can be decided in it), which makes the early baseline look fast. A baseline starts
# no earlier than this many days after the payer's first decision: beyond the long lags of
# the slowest Medicaid plans in the sample data.
WARMUP_DAYS = 60


def _history_ok(frame: AggregateFrame, payer: str, baseline_start: date) -> bool:
    decided = frame.payers[payer].get("decided", frame.days)
    seen = decided.nonzero()[0]
    return len(seen) > 0 and frame.day(int(seen[0])) + timedelta(days=WARMUP_DAYS) <= baseline_start


def _week(frame: AggregateFrame, payer: str, run_day: date, weeks_back: int) -> float | None:
    end = run_day - timedelta(weeks=weeks_back)
    return stats.histogram_median(frame.lag_histogram(payer, end - timedelta(weeks=1), end))


def _finding(frame: AggregateFrame, payer: str, run_day: date, current_start: date,
             baseline_start: date, current_median: float, baseline_median: float,
             method: str, extra: dict[str, object], business: bool = False) -> Finding:
    extra_days = current_median - baseline_median
    paid = frame.window(payer, "paid_cents", baseline_start, current_start)
    weeks = max(1.0, (current_start - baseline_start).days / 7)
    weekly_paid = paid / weeks
    # Five business days are a calendar week of cash.
    delayed = extra_days / (5 if business else 7) * weekly_paid
    unit = "business days" if business else "days"
    ratio = current_median / baseline_median if baseline_median else float("inf")
    return Finding(
        type=TYPE, payer=payer, scope="payer", method=method,
        severity=Severity.HIGH if ratio >= 1.5 else Severity.MEDIUM,
        title=f"{payer}: paying in {current_median:.0f} {unit} vs {baseline_median:.0f} usual",
        summary=(f"Median {unit} from submission to payment rose to {current_median:.0f} from "
                 f"{baseline_median:.0f}; about ${dollars(delayed):,.0f} of cash arrives later "
                 "than usual." + (" Business days leave out weekends and federal holidays, "
                                  "when payers do not adjudicate." if business else "")),
        metrics={"current_median_days": current_median, "baseline_median_days": baseline_median,
                 "extra_days": extra_days, "ratio": round(ratio, 2),
                 "average_weekly_paid_dollars": dollars(weekly_paid),
                 "delayed_dollars": dollars(delayed),
                 "w1": _week(frame, payer, run_day, 0), "w2": _week(frame, payer, run_day, 1),
                 "w3": _week(frame, payer, run_day, 2), **extra},
        evidence={"lag_histogram_current": _compact(frame, payer, current_start, run_day),
                  "lag_histogram_baseline": _compact(frame, payer, baseline_start,
                                                     current_start)},
        recommended_actions=[
            "Check the payer's claim-status portal for claims older than the usual lag.",
            "Ask the payer's provider relations about processing backlogs.",
            "Plan cash flow for the delayed dollars."],
        window=Window(baseline_start=baseline_start,
                      baseline_end=current_start - timedelta(days=1),
                      current_start=current_start, current_end=run_day - timedelta(days=1)))


def _compact(frame: AggregateFrame, payer: str, first: date, end: date) -> dict[str, int]:
    histogram = frame.lag_histogram(payer, first, end)
    return {str(days): int(count) for days, count in enumerate(histogram) if count}


def seeds_rule(frame: AggregateFrame, run_day: date) -> list[Finding]:
    found = []
    baseline_start = run_day - timedelta(weeks=3 + BASELINE_WEEKS)
    baseline_end = run_day - timedelta(weeks=3)
    for payer in frame.payers:
        if not _history_ok(frame, payer, baseline_start):
            continue
        w1, w2, w3 = (_week(frame, payer, run_day, k) for k in range(3))
        base = stats.histogram_median(frame.lag_histogram(payer, baseline_start, baseline_end))
        if w1 is None or base is None:
            continue
        trend = (w2 is not None and w3 is not None and w1 > w2 > w3
                 and w1 - w3 > SEEDS_TREND_DAYS)
        if trend or w1 > SEEDS_RATIO * base:
            found.append(_finding(frame, payer, run_day, run_day - timedelta(weeks=1),
                                  baseline_start, w1, base, "seeds_median_trend", {}))
    return found


def _business(frame: AggregateFrame, payer: str, first: date, end: date) -> bool:
    """Business-day histograms exist for every paid line of the window (aggregates written
    before they were kept have calendar days only)."""
    working = float(frame.lag_histogram(payer, first, end, business=True).sum())
    return working > 0 and working == float(frame.lag_histogram(payer, first, end).sum())


def weekly_test(frame: AggregateFrame, run_day: date) -> list[Finding]:
    tested = []
    for weeks in WINDOW_WEEKS:
        current_start = run_day - timedelta(weeks=weeks)
        baseline_start = current_start - timedelta(weeks=BASELINE_WEEKS)
        for payer in frame.payers:
            if not _history_ok(frame, payer, baseline_start):
                continue
            business = _business(frame, payer, baseline_start, run_day)
            current = frame.lag_histogram(payer, current_start, run_day, business)
            baseline = frame.lag_histogram(payer, baseline_start, current_start, business)
            if current.sum() < MIN_CURRENT_PAID or baseline.sum() < MIN_BASELINE_PAID:
                continue
            # The floor is judged on the lag the test used, its calendar figures are shown.
            shift = ((stats.histogram_median(current) or 0.0),
                     (stats.histogram_median(baseline) or 0.0))
            # Every eligible payer enters BH; the practical floor applies after it (selecting
            # on the effect first would shrink the family and inflate false discoveries).
            tested.append((payer, current_start, baseline_start, shift, business,
                           stats.ks_larger_pvalue(current, baseline)))
    q = run_fdr_level(len(frame.payers))
    rejected = stats.benjamini_hochberg([t[5] for t in tested], q)
    found: dict[str, Finding] = {}
    for (payer, current_start, baseline_start, (cur, base), business, p_value), reject in zip(
            tested, rejected, strict=True):
        # Business days are 5 of 7: the 3-day floor in calendar days is 2 business days.
        floor = MIN_SHIFT_DAYS * 5 / 7 if business else MIN_SHIFT_DAYS
        material = cur >= MIN_RATIO * base and cur - base >= floor
        if reject and material and payer not in found:  # one per payer: its first window
            found[payer] = _finding(frame, payer, run_day, current_start, baseline_start,
                                    cur, base, "weekly_ks_bh",
                                    {"p_value": p_value, "fdr_level": round(q, 4),
                                     "window_days": (run_day - current_start).days,
                                     "lag_unit": "business_days" if business else "days"},
                                    business)
    return list(found.values())
