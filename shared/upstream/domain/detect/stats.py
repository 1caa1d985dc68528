"""The statistical tests detectors use, each small enough to check against a reference.

Sources, so the constants below can be argued with:
- Beta-binomial posterior predictive: Gelman et al., *Bayesian Data Analysis* 3rd ed., §2.4 /
  §5.3. The baseline's uncertainty and week-to-week variation both widen the predictive
  distribution of this week's denials, so small payers and noisy payers are judged fairly.
- Overdispersion as a design effect: Pearson dispersion φ̂ = 1 + (n̄ − 1)ρ of binned counts
  (Williams, D. A. (1982) "Extra-binomial variation in logistic linear models", *Applied
  Statistics* 31:144) used as Kish's design effect (Kish, *Survey Sampling*, 1965): n lines
  carry the information of n / φ̂ independent ones.
- Benjamini & Hochberg (1995), *JRSS B* 57:289 — false-discovery rate across all cells tested
  in one run (statsmodels `multipletests`, method `fdr_bh`).
- Binomial CUSUM: Page (1954) *Biometrika* 41:100; Reynolds & Stoumbos (1999) *J. Quality
  Technology* 31:87 for Bernoulli/binomial data. Lorden (1971) *Ann. Math. Stat.* 42:1897:
  in-control average run length ≥ e^h, so h = ln(ARL₀) sets the false-alarm rate directly.
- Prediction interval for one new observation: Hahn & Meeker, *Statistical Intervals* (1991),
  ch. 4; applied to log dollars because denied dollars are right-skewed.
- Mann-Whitney U (one-sided) for lag distributions: scipy `mannwhitneyu`.
- Two-sample Kolmogorov-Smirnov, one-sided (Smirnov 1939; scipy `ks_2samp`): where the question
  is the whole distribution, not its centre. A fee-schedule cut on one plan of a payer moves
  part of the unit-price distribution and may leave its median where it was. With the ties of
  binned data the test is conservative (its p-values are too large), never anti-conservative.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import stats
from statsmodels.stats.multitest import multipletests

Array = npt.NDArray[np.float64]

# A dispersion above this is not "overdispersion" any more but a payer changing behaviour
# inside the baseline itself; capping keeps one wild baseline week from disarming the test.
MAX_DISPERSION = 4.0


def rate_increase_pvalue(denied: float, decided: float, baseline_denied: float,
                         baseline_decided: float, design_effect: float = 1.0) -> float:
    """P(X ≥ denied) under the beta-binomial posterior predictive of the baseline.

    Baseline rate ~ Beta(x₀ + ½, n₀ − x₀ + ½) (Jeffreys prior); the predictive of the current
    count then carries the baseline's own uncertainty, exactly, at any count: no chi-square
    validity limits. Overdispersion enters as Kish's design effect (the Pearson dispersion of
    the baseline's weekly counts): both samples count as n / deff independent lines, because
    lines of one week share that week's payer behaviour.
    """
    deff = max(1.0, design_effect)
    n, x = round(decided / deff), round(denied / deff)
    if n <= 0 or x <= 0:
        return 1.0
    a = baseline_denied / deff + 0.5
    b = (baseline_decided - baseline_denied) / deff + 0.5
    return float(stats.betabinom.sf(x - 1, n, a, b))


def chi_square_pvalue(denied: float, decided: float, baseline_denied: float,
                      baseline_decided: float) -> float:
    """The seeds' test: Pearson chi-square on the 2×2 table current/baseline × denied/not
    (scipy's default Yates correction)."""
    table = np.array([[denied, decided - denied],
                      [baseline_denied, baseline_decided - baseline_denied]])
    if (table.sum(axis=0) == 0).any() or (table.sum(axis=1) == 0).any():
        return 1.0
    return float(stats.chi2_contingency(table)[1])


def benjamini_hochberg(pvalues: Sequence[float], q: float,
                       weights: Sequence[float] | None = None) -> list[bool]:
    """BH at level q; with `weights` (mean 1), the weighted procedure of Genovese, Roeder &
    Wasserman (2006, *Biometrika* 93:509): p_i / w_i into BH, FDR still ≤ q."""
    if not pvalues:
        return []
    values = np.asarray(pvalues, float)
    if weights is not None:
        w = np.asarray(weights, float)
        values = np.minimum(1.0, values / (w / w.mean()))
    rejected, *_ = multipletests(list(values), alpha=q, method="fdr_bh")
    return [bool(r) for r in rejected]


def split_weights(is_primary: Sequence[bool], primary_share: float = 0.5) -> list[float]:
    """Weights giving the primary hypotheses `primary_share` of the error budget together,
    the rest shared by the others (the whole budget when one group is empty)."""
    primary = sum(is_primary)
    others = len(is_primary) - primary
    if primary == 0 or others == 0:
        return [1.0] * len(is_primary)
    total = len(is_primary)
    return [primary_share * total / primary if flag else (1 - primary_share) * total / others
            for flag in is_primary]


def binomial_cusum(denied: Array, decided: Array, p0: float, p1: float,
                   dispersion: float = 1.0) -> Array:
    """Page's CUSUM path of the binomial log-likelihood ratio p1 vs p0, one step per day.
    Increments are divided by the Pearson dispersion (quasi-likelihood), so overdispersed
    days do not march the statistic up on noise. Days with no decisions add nothing."""
    up, down = math.log(p1 / p0), math.log((1 - p1) / (1 - p0))
    increments = (denied * up + (decided - denied) * down) / max(1.0, dispersion)
    path = np.zeros(len(increments))
    level = 0.0
    for i, step in enumerate(increments):
        level = max(0.0, level + float(step))
        path[i] = level
    return path


def dispersion(denied: Sequence[float] | Array, decided: Sequence[float] | Array) -> float:
    """Pearson φ̂ of binned counts around their pooled rate, in [1, MAX_DISPERSION]; 1 when
    there are too few bins to say."""
    denied, decided = np.asarray(denied, float), np.asarray(decided, float)
    keep = decided > 0
    x, n = denied[keep], decided[keep]
    if len(n) < 3 or n.sum() == 0:
        return 1.0
    p = x.sum() / n.sum()
    if p <= 0 or p >= 1:
        return 1.0
    phi = float(((x - n * p) ** 2 / (n * p * (1 - p))).sum() / (len(n) - 1))
    return min(MAX_DISPERSION, max(1.0, phi))


def upper_prediction_pvalue(current: float, baseline: Sequence[float] | Array) -> float:
    """One-sided p-value of `current` against a t prediction interval built from the baseline
    values, on log1p scale. Needs ≥ 4 baseline values."""
    values = np.log1p(np.asarray(baseline, float))
    if len(values) < 4:
        return 1.0
    mean, sd = float(values.mean()), float(values.std(ddof=1))
    if sd == 0:
        sd = 1e-9
    t = (math.log1p(current) - mean) / (sd * math.sqrt(1 + 1 / len(values)))
    return float(stats.t.sf(t, len(values) - 1))


def ks_smaller_pvalue(current: dict[int, float], baseline: dict[int, float]) -> float:
    """One-sided two-sample KS: is `current` stochastically smaller than `baseline`?
    Both are histograms `value → count` (e.g. unit-price bins).

    D⁺ = max(F_current − F_baseline) over the bins; the p-value is Smirnov's one-sided limit
    with Hodges' correction (Hodges 1958, *Arkiv för Matematik* 3:469, eq. 5.3), as scipy's
    `ks_2samp(..., alternative="greater", method="asymp")` computes it, without expanding
    the histograms into samples (the weekly runs test thousands of cells).
    """
    bins = sorted(current.keys() | baseline.keys())
    x = np.array([max(current.get(b, 0.0), 0.0) for b in bins])
    y = np.array([max(baseline.get(b, 0.0), 0.0) for b in bins])
    n1, n2 = float(np.rint(x).sum()), float(np.rint(y).sum())
    if n1 < 1 or n2 < 1:
        return 1.0
    d = max(0.0, float((np.cumsum(x) / x.sum() - np.cumsum(y) / y.sum()).max()))
    m, n = max(n1, n2), min(n1, n2)
    z = math.sqrt(m * n / (m + n)) * d
    exponent = -2 * z * z - 2 * z * (m + 2 * n) / math.sqrt(m * n * (m + n)) / 3
    return float(min(1.0, max(0.0, math.exp(exponent))))


def ks_larger_pvalue(current: Array, baseline: Array) -> float:
    """One-sided two-sample KS (current larger) from two histograms indexed by value."""
    return ks_smaller_pvalue({-i: float(c) for i, c in enumerate(current) if c},
                             {-i: float(c) for i, c in enumerate(baseline) if c})


def histogram_median(histogram: Array) -> float | None:
    """Median of integer values given as counts per value (index = value)."""
    total = histogram.sum()
    if total <= 0:
        return None
    cumulative = np.cumsum(histogram)
    return float(np.searchsorted(cumulative, total / 2))


def shift_pvalue(current: Array, baseline: Array) -> float:
    """One-sided Mann-Whitney U (current larger) from two histograms of whole days."""
    if current.sum() < 1 or baseline.sum() < 1:
        return 1.0
    values = np.arange(len(current))
    x = np.repeat(values, current.astype(int))
    y = np.repeat(values, baseline.astype(int))
    if len(x) == 0 or len(y) == 0:
        return 1.0
    return float(stats.mannwhitneyu(x, y, alternative="greater").pvalue)
