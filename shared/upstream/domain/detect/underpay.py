"""Underpayment: a payer quietly paying less per unit for the same code (a fee-schedule cut).

Denial detectors cannot see it: the claim is paid, just at less. The test, per payer × code:
the unit price of the last 2 and the last 4 weeks against the 13 weeks before, one-sided
two-sample Kolmogorov-Smirnov on the 1 %-wide log-price histograms the aggregates keep
(`stats.ks_smaller_pvalue`). KS, not a rank or mean test, because a cut often reaches one plan
or product line of a payer first: part of the distribution moves and the median may not.

- Minimum sample: 10 priced lines in the current window and 30 in the baseline (fewer, and one
  unusual claim decides the test).
- Multiple testing: every eligible payer × code × window of the run enters one
  Benjamini-Hochberg family at `run_fdr_level(payers)`, the same false-alert budget per
  payer-year as the other weekly detectors (Benjamini & Hochberg 1995; under the global null
  BH's chance of any rejection is at most q whatever the number of cells).
- Practical floor, applied after BH: the mean unit price fell by at least 5 % and by at least
  $50 a month. Medicare's 2 % sequestration and day-to-day swings in a payer's plan mix move
  prices by less; a cut worth a call to provider relations is larger.

The unit price is the allowed amount per unit where the remittance gives it (see
`aggregates.py`), so a patient's deductible does not look like a payer cutting rates.

Where the practice keeps its fee schedule in Upstream (settings `fee_schedule`: payer, code,
contracted cents a unit), `contract_findings` also compares each contracted code with its
contract, which finds a payer that has always underpaid, which no baseline can.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from scipy.stats import binomtest

from upstream.domain.aggregates import AggregateFrame, bin_price, price_bin
from upstream.domain.detect import stats
from upstream.domain.detect.common import BASELINE_WEEKS, dollars, run_fdr_level
from upstream.domain.detect.findings import Finding, Severity, Window

TYPE = "underpayment"
WINDOW_WEEKS = (2, 4)
MIN_CURRENT_PRICED = 10
MIN_BASELINE_PRICED = 30
MIN_CUT = 0.05
MIN_MONTHLY_SHORT_CENTS = 5000
HIGH_CUT = 0.15
HIGH_MONTHLY_SHORT_CENTS = 100_000
DAYS_PER_MONTH = 30.4


def _mean_price(frame: AggregateFrame, payer: str, cpt: str, first: date,
                end: date) -> tuple[float, float]:
    """(mean cents per unit, units) of the priced lines of one code in [first, end)."""
    units = frame.window(payer, f"cpt.{cpt}.paid_units", first, end)
    cents = frame.window(payer, f"cpt.{cpt}.allowed_cents", first, end)
    return (cents / units if units else 0.0), units


def histogram_quantile(histogram: dict[int, float], q: float) -> float | None:
    """The unit price (cents) at quantile q of a price histogram."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    running = 0.0
    for bin_index in sorted(histogram):
        running += histogram[bin_index]
        if running >= q * total:
            return bin_price(bin_index)
    return bin_price(max(histogram))


def weekly_test(frame: AggregateFrame, run_day: date) -> list[Finding]:
    tested: list[tuple[str, str, int, float]] = []
    for weeks in WINDOW_WEEKS:
        current_start = run_day - timedelta(weeks=weeks)
        baseline_start = current_start - timedelta(weeks=BASELINE_WEEKS)
        for payer, series in frame.payers.items():
            for cpt in series.names("ppu"):
                current = frame.price_histogram(payer, cpt, current_start, run_day)
                baseline = frame.price_histogram(payer, cpt, baseline_start, current_start)
                if (sum(current.values()) < MIN_CURRENT_PRICED
                        or sum(baseline.values()) < MIN_BASELINE_PRICED):
                    continue
                tested.append((payer, cpt, weeks, stats.ks_smaller_pvalue(current, baseline)))
    q = run_fdr_level(len(frame.payers))
    rejected = stats.benjamini_hochberg([t[3] for t in tested], q)
    found: dict[tuple[str, str], Finding] = {}
    for (payer, cpt, weeks, p_value), reject in zip(tested, rejected, strict=True):
        if not reject or (payer, cpt) in found:
            continue
        finding = _finding(frame, payer, cpt, run_day, weeks, p_value, q)
        if finding is not None:
            found[(payer, cpt)] = finding
    return list(found.values())


def _finding(frame: AggregateFrame, payer: str, cpt: str, run_day: date, weeks: int,
             p_value: float, q: float) -> Finding | None:
    current_start = run_day - timedelta(weeks=weeks)
    baseline_start = current_start - timedelta(weeks=BASELINE_WEEKS)
    current_mean, current_units = _mean_price(frame, payer, cpt, current_start, run_day)
    baseline_mean, _ = _mean_price(frame, payer, cpt, baseline_start, current_start)
    if not baseline_mean or not current_mean:
        return None
    cut = 1 - current_mean / baseline_mean
    monthly_units = current_units * DAYS_PER_MONTH / (weeks * 7)
    short = (baseline_mean - current_mean) * monthly_units
    if cut < MIN_CUT or short < MIN_MONTHLY_SHORT_CENTS:
        return None
    current = frame.price_histogram(payer, cpt, current_start, run_day)
    baseline = frame.price_histogram(payer, cpt, baseline_start, current_start)
    high = cut >= HIGH_CUT or short >= HIGH_MONTHLY_SHORT_CENTS
    return Finding(
        type=TYPE, payer=payer, scope=f"cpt:{cpt}", method="weekly_ks_bh",
        severity=Severity.HIGH if high else Severity.MEDIUM,
        title=(f"{payer}: paying ${dollars(current_mean):,.2f} per unit of {cpt} vs "
               f"${dollars(baseline_mean):,.2f} usual ({cut:.0%} less)"),
        summary=(f"Over the last {weeks * 7} days {payer} allowed {cut:.0%} less per unit of "
                 f"{cpt} than in the 13 weeks before: about ${dollars(short):,.0f} short a "
                 "month at the current volume. A fee-schedule change or a plan repricing "
                 "usually explains it."),
        metrics={"current_unit_price_dollars": dollars(current_mean),
                 "baseline_unit_price_dollars": dollars(baseline_mean),
                 "cut": round(cut, 4), "short_dollars_per_month": dollars(short),
                 "current_median_dollars": _dollars_or_none(histogram_quantile(current, 0.5)),
                 "baseline_median_dollars": _dollars_or_none(histogram_quantile(baseline, 0.5)),
                 "current_lines": sum(current.values()),
                 "baseline_lines": sum(baseline.values()),
                 "p_value": p_value, "fdr_level": round(q, 4), "window_days": weeks * 7},
        evidence={"unit_price_histogram_current": _shown(current),
                  "unit_price_histogram_baseline": _shown(baseline)},
        recommended_actions=[
            f"Compare the allowed amounts for {cpt} with your contract's fee schedule.",
            "Ask the payer's provider relations whether a fee-schedule change took effect.",
            "Appeal underpaid claims with the contract rate if the cut is not in the contract."],
        window=Window(baseline_start=baseline_start,
                      baseline_end=current_start - timedelta(days=1),
                      current_start=current_start, current_end=run_day - timedelta(days=1)))


def _dollars_or_none(cents: float | None) -> float | None:
    return None if cents is None else dollars(cents)


def _shown(histogram: dict[int, float]) -> dict[str, int]:
    """Lines per unit price in dollars, for the evidence table."""
    shown: dict[str, int] = {}
    for bin_index, count in sorted(histogram.items()):
        label = f"{dollars(bin_price(bin_index)):.2f}"
        shown[label] = shown.get(label, 0) + int(count)
    return shown


# --- against the contract --------------------------------------------------------------------
# Lines may legitimately come in under contract now and then (multiple-procedure reductions,
# partial units): up to this share of a code's lines is normal; a larger share is a payer
# paying below its contract. One per cent below the rate is still the rate (the price
# histogram's own resolution is 1 %).
CONTRACT_WINDOW_WEEKS = 4
NORMAL_BELOW_SHARE = 0.05
CONTRACT_TOLERANCE = 0.01


def contract_findings(frame: AggregateFrame, run_day: date,
                      schedule: Sequence[Mapping[str, Any]] | None) -> list[Finding]:
    """Each contracted payer × code of the practice's fee schedule against what the payer
    allowed in the last four weeks: a one-sided binomial test that more than 5 % of lines were
    priced below the contract rate, Benjamini-Hochberg across the schedule's rows at the run's
    level, and the same practical floor as the baseline test (2 % short on average and $50 a
    month)."""
    current_start = run_day - timedelta(weeks=CONTRACT_WINDOW_WEEKS)
    tested: list[tuple[str, str, int, float, float]] = []
    for row in schedule or ():
        payer, cpt = str(row.get("payer", "")), str(row.get("cpt", ""))
        rate = float(row.get("cents_per_unit") or 0)
        if payer not in frame.payers or rate <= 0:
            continue
        histogram = frame.price_histogram(payer, cpt, current_start, run_day)
        lines = sum(histogram.values())
        if lines < MIN_CURRENT_PRICED:
            continue
        floor = price_bin(rate * (1 - CONTRACT_TOLERANCE))
        below = sum(count for price, count in histogram.items() if price < floor)
        p_value = float(binomtest(round(below), round(lines), NORMAL_BELOW_SHARE,
                                  alternative="greater").pvalue)
        tested.append((payer, cpt, round(below), rate, p_value))
    q = run_fdr_level(len(frame.payers))
    rejected = stats.benjamini_hochberg([t[4] for t in tested], q)
    found = []
    for (payer, cpt, below, rate, p_value), reject in zip(tested, rejected, strict=True):
        mean, units = _mean_price(frame, payer, cpt, current_start, run_day)
        short = (rate - mean) * units * DAYS_PER_MONTH / (CONTRACT_WINDOW_WEEKS * 7)
        if not reject or not mean or mean > rate * (1 - 2 * CONTRACT_TOLERANCE) \
                or short < MIN_MONTHLY_SHORT_CENTS:
            continue
        cut = 1 - mean / rate
        histogram = frame.price_histogram(payer, cpt, current_start, run_day)
        found.append(Finding(
            type=TYPE, payer=payer, scope=f"cpt:{cpt}", method="contract_binomial_bh",
            severity=Severity.HIGH if cut >= HIGH_CUT or short >= HIGH_MONTHLY_SHORT_CENTS
            else Severity.MEDIUM,
            title=(f"{payer}: paying ${dollars(mean):,.2f} per unit of {cpt} against "
                   f"${dollars(rate):,.2f} in your contract ({cut:.0%} less)"),
            summary=(f"{below} of {int(sum(histogram.values()))} {cpt} lines in the last "
                     f"{CONTRACT_WINDOW_WEEKS * 7} days were allowed below the contract rate: "
                     f"about ${dollars(short):,.0f} short a month at the current volume."),
            metrics={"contract_unit_price_dollars": dollars(rate),
                     "current_unit_price_dollars": dollars(mean), "cut": round(cut, 4),
                     "lines_below_contract": below,
                     "current_lines": sum(histogram.values()),
                     "short_dollars_per_month": dollars(short), "p_value": p_value,
                     "fdr_level": round(q, 4)},
            evidence={"unit_price_histogram_current": _shown(histogram),
                      "contract_rate_dollars": dollars(rate)},
            recommended_actions=[
                f"Appeal the underpaid {cpt} lines with the contract's rate attached.",
                "Ask the payer's provider relations to correct the loaded fee schedule."],
            window=Window(current_start=current_start, current_end=run_day - timedelta(days=1))))
    return found
