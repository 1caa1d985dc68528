"""A payer's behaviour fingerprint, read from the daily aggregates (never from claim lines).

Each measure compares the recent quarter (the 91 days before the as-of day) with the
prior nine months (the 274 days before that), because what a billing manager needs is both
"how does this payer treat us" and "is it changing":

- denial rate, and its trend as a log odds ratio recent/prior (0 = unchanged; ln 2 ≈ 0.69 =
  the odds of a denial doubled), with a one-sided two-proportion z test;
- days to payment (median of paid lines, calendar days), its trend in days, and a one-sided
  two-sample Kolmogorov-Smirnov test of the whole lag distribution (a payer that starts
  delaying a slice of claims moves the tail before the median);
- price index: what the payer allowed per unit against the practice's norm for the same codes
  (all payers' mean unit price of each code, weighted by this payer's units), so a payer is not
  called an underpayer for the codes it happens to buy; and its trend (recent/prior − 1);
- CARC mix shift: the Jensen-Shannon distance (base 2, 0–1) between the recent and prior mix
  of denial reasons (Lin 1991, *IEEE Trans. Inf. Theory* 37:145): 0 = the same reasons, above
  about 0.3 = the payer now denies for different reasons;
- appeal overturn rate: not in the aggregates (appeal outcomes are not recorded yet), so None.

Minimum sample: a measure needs 30 lines in each period (denials: decided lines; lag and
price: paid lines); below that it is None rather than a number one claim can swing.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
from scipy import stats as scipy_stats
from scipy.spatial.distance import jensenshannon

from upstream.domain.aggregates import AggregateFrame
from upstream.domain.detect import stats

RECENT_DAYS = 91
PRIOR_DAYS = 274
MIN_LINES = 30


@dataclass(frozen=True)
class Periods:
    prior_start: date
    recent_start: date
    end: date  # exclusive: the as-of day

    @classmethod
    def as_of(cls, day: date) -> Periods:
        recent = day - timedelta(days=RECENT_DAYS)
        return cls(recent - timedelta(days=PRIOR_DAYS), recent, day)


@dataclass(frozen=True)
class Fingerprint:
    payer: str
    decided_recent: int
    decided_prior: int
    denial_rate: float | None
    denial_rate_prior: float | None
    denial_trend_log_odds: float | None
    denial_trend_p_value: float | None
    days_to_payment: float | None
    days_to_payment_prior: float | None
    payment_trend_days: float | None
    payment_trend_ks_p_value: float | None
    price_index: float | None
    price_index_prior: float | None
    price_trend: float | None
    carc_mix_shift: float | None
    appeal_overturn_rate: float | None
    paid_dollars_recent: float

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v)
                for k, v in asdict(self).items() if k != "payer"}


def fingerprints(frame: AggregateFrame, as_of: date) -> list[Fingerprint]:
    periods = Periods.as_of(as_of)
    norms = (_price_norms(frame, periods.recent_start, periods.end),
             _price_norms(frame, periods.prior_start, periods.recent_start))
    return [_fingerprint(frame, payer, periods, norms) for payer in sorted(frame.payers)]


def _fingerprint(frame: AggregateFrame, payer: str, periods: Periods,
                 norms: tuple[dict[str, float], dict[str, float]]) -> Fingerprint:
    recent = (periods.recent_start, periods.end)
    prior = (periods.prior_start, periods.recent_start)
    n1, n0 = (frame.window(payer, "decided", *w) for w in (recent, prior))
    x1, x0 = (frame.window(payer, "denied", *w) for w in (recent, prior))
    rate1 = x1 / n1 if n1 >= MIN_LINES else None
    rate0 = x0 / n0 if n0 >= MIN_LINES else None
    lag1, lag0 = (frame.lag_histogram(payer, *w) for w in (recent, prior))
    enough_lag = lag1.sum() >= MIN_LINES and lag0.sum() >= MIN_LINES
    days1 = stats.histogram_median(lag1) if lag1.sum() >= MIN_LINES else None
    days0 = stats.histogram_median(lag0) if lag0.sum() >= MIN_LINES else None
    price1 = _price_index(frame, payer, *recent, norms[0])
    price0 = _price_index(frame, payer, *prior, norms[1])
    both_rates = rate1 is not None and rate0 is not None
    return Fingerprint(
        payer=payer, decided_recent=int(n1), decided_prior=int(n0),
        denial_rate=rate1, denial_rate_prior=rate0,
        denial_trend_log_odds=_log_odds_ratio(x1, n1, x0, n0) if both_rates else None,
        denial_trend_p_value=_two_proportion_p(x1, n1, x0, n0) if both_rates else None,
        days_to_payment=days1, days_to_payment_prior=days0,
        payment_trend_days=(days1 - days0) if days1 is not None and days0 is not None else None,
        payment_trend_ks_p_value=stats.ks_larger_pvalue(lag1, lag0) if enough_lag else None,
        price_index=price1, price_index_prior=price0,
        price_trend=(price1 / price0 - 1) if price1 and price0 else None,
        carc_mix_shift=_carc_shift(frame, payer, recent, prior),
        appeal_overturn_rate=None,
        paid_dollars_recent=round(frame.window(payer, "paid_cents", *recent) / 100, 2))


def _log_odds_ratio(x1: float, n1: float, x0: float, n0: float) -> float:
    """Haldane-Anscombe: half a count in each cell keeps a zero from making it infinite."""
    return math.log((x1 + 0.5) / (n1 - x1 + 0.5)) - math.log((x0 + 0.5) / (n0 - x0 + 0.5))


def _two_proportion_p(x1: float, n1: float, x0: float, n0: float) -> float:
    """One-sided pooled two-proportion z test: is the recent denial rate higher?"""
    pooled = (x1 + x0) / (n1 + n0)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    if se == 0:
        return 1.0
    return float(scipy_stats.norm.sf((x1 / n1 - x0 / n0) / se))


def _price_norms(frame: AggregateFrame, first: date, end: date) -> dict[str, float]:
    """The practice's mean allowed cents per unit of each code, all payers together."""
    cents: dict[str, float] = {}
    units: dict[str, float] = {}
    for payer, series in frame.payers.items():
        for cpt in series.names("ppu"):
            cents[cpt] = cents.get(cpt, 0.0) + frame.window(
                payer, f"cpt.{cpt}.allowed_cents", first, end)
            units[cpt] = units.get(cpt, 0.0) + frame.window(
                payer, f"cpt.{cpt}.paid_units", first, end)
    return {cpt: cents[cpt] / units[cpt] for cpt in cents if units[cpt]}


def _price_index(frame: AggregateFrame, payer: str, first: date, end: date,
                 norms: dict[str, float]) -> float | None:
    """Allowed dollars over what the practice's norm prices give for the same units."""
    allowed = expected = lines = 0.0
    for cpt in frame.payers[payer].names("ppu"):
        units = frame.window(payer, f"cpt.{cpt}.paid_units", first, end)
        if cpt in norms and units:
            allowed += frame.window(payer, f"cpt.{cpt}.allowed_cents", first, end)
            expected += units * norms[cpt]
            lines += frame.window(payer, f"cpt.{cpt}.paid", first, end)
    return allowed / expected if expected and lines >= MIN_LINES else None


def _carc_shift(frame: AggregateFrame, payer: str, recent: tuple[date, date],
                prior: tuple[date, date]) -> float | None:
    codes = [c for c in frame.payers[payer].names("carc")]
    if not codes:
        return None
    mix1 = np.array([frame.window(payer, f"carc.{c}.denied", *recent) for c in codes])
    mix0 = np.array([frame.window(payer, f"carc.{c}.denied", *prior) for c in codes])
    if mix1.sum() < MIN_LINES / 3 or mix0.sum() < MIN_LINES / 3:
        return None  # ten denials make a mix; fewer are anecdotes
    return float(jensenshannon(mix1, mix0, base=2))
