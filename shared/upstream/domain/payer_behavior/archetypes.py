"""Payer archetypes: clusters of standardised fingerprints, named by a stated rule.

Method:
1. Six features per payer with enough data (30 decided lines in the recent quarter; at least
   three such payers, as archetypes are relative to the practice's other payers): the logit
   of the denial rate, the denial trend (log odds ratio), log days to payment, the payment
   trend (log ratio of medians), log price index and the price trend (log ratio). Logs and
   logits put rates and ratios on scales where a difference means the same thing everywhere.
   A trend enters only where its own test finds it at the 1 % level (the two-proportion z
   test for denials, the one-sided KS test for lags; a price trend needs no test as its
   3 % scale floor is already beyond noise): a payer whose numbers merely wobbled has no
   trend, so wobbles do not make archetypes.
2. Robust standardisation across the practice's payers: (x − median) / (1.4826 · MAD), the MAD
   scaled to a normal SD (Rousseeuw & Croux 1993, *JASA* 88:1273), so one extreme payer does
   not hide the others. Each scale has a floor (`MIN_SCALE`): the smallest difference worth a
   billing manager's attention, so that payers that barely differ are not pulled apart.
3. k-means (Lloyd; k-means++ seeding, 20 restarts; scipy `kmeans2`) for k = 2 … min(6, n − 1),
   k chosen by the largest mean silhouette (Rousseeuw 1987, *J. Comput. Appl. Math.* 20:53);
   with fewer than 4 payers, or a best silhouette under 0.25 ("no substantial structure",
   Kaufman & Rousseeuw 1990), every payer is its own cluster.
4. Naming rule. A problem score per archetype, in z units:
   - Aggressive Denier: max(denial-rate z, denial-trend z)
   - Slow Payer: max(days-to-payment z, payment-trend z)
   - Underpayer: max(−price-index z, −price-trend z)
   The largest problem score of at least `NAME_Z` (1: a full robust SD from the practice's
   payers) names; failing that, `Prompt Payer` when −days-to-payment z ≥ `NAME_Z` and the
   denial score is below it; otherwise `Typical`. The rule names each cluster by its members'
   median fingerprint and each payer by its own fingerprint; the payer's name is, in this
   order, its own problem, its cluster's problem, its own promptness, its cluster's, else
   `Typical`. A payer that has just started denying stands out from the peers it still
   clusters with, and that is exactly what the practice must hear; a payer that is mild
   itself but clusters with the practice's underpayers is named with them.
5. Stability: 200 bootstrap resamples of the payers (after Hennig 2007, *CSDA* 52:258): each
   resample sets the standardisation and is clustered with the same k; every payer is
   standardised by it, assigned to its nearest resampled centroid and named by the rule. A
   payer's stability is the share of resamples that give it the same name; below 0.6 the name
   is reported as tentative.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.cluster.vq import kmeans2

from upstream.domain.payer_behavior.fingerprint import MIN_LINES, Fingerprint

AGGRESSIVE_DENIER = "Aggressive Denier"
SLOW_PAYER = "Slow Payer"
PROMPT_PAYER = "Prompt Payer"
UNDERPAYER = "Underpayer"
TYPICAL = "Typical"
ARCHETYPES = (AGGRESSIVE_DENIER, SLOW_PAYER, PROMPT_PAYER, UNDERPAYER, TYPICAL)

FEATURES = ("denial_rate_logit", "denial_trend", "days_log", "payment_trend", "price_log",
            "price_trend")
# Floors on each feature's scale (same units as the feature), the smallest difference a
# billing manager would act on: 0.25 on the denial logit is odds 25 % apart (8 % against
# 10 %); 0.2 on log days is 20 % (15 days against 18); 0.05 on log price is 5 %, beyond
# Medicare's 2 % sequestration and the spread of a payer's plans. Trends are gated by their
# tests already; their floors (0.15 log odds, 10 % of days, 3 % of price) only keep a
# practice whose payers barely change from magnifying the one that changed a little.
MIN_SCALE = np.array([0.25, 0.15, 0.2, 0.1, 0.05, 0.03])
NAME_Z = 1.0
# A norm needs a few payers to be one: with two, each is exactly as far from their median.
MIN_PAYERS = 3
TREND_ALPHA = 0.01
PROBLEMS = (AGGRESSIVE_DENIER, SLOW_PAYER, UNDERPAYER)
MIN_SILHOUETTE = 0.25
MAX_K = 6
RESTARTS = 20
BOOTSTRAPS = 200
STABLE = 0.6

Matrix = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Assignment:
    payer: str
    archetype: str
    stability: float | None
    cluster: int | None
    z: dict[str, float]
    scores: dict[str, float]
    note: str


def features(fp: Fingerprint) -> list[float]:
    """The six clustering features of one fingerprint; NaN where a measure is missing, 0 where
    a trend is not significant."""
    def log(value: float | None) -> float:
        return math.log(value) if value and value > 0 else math.nan

    rate = fp.denial_rate
    logit = math.log((rate + 1e-3) / (1 - rate + 1e-3)) if rate is not None else math.nan
    denial_trend = (_nan(fp.denial_trend_log_odds)
                    if _significant(fp.denial_trend_p_value) else 0.0)
    payment = (log(fp.days_to_payment) - log(fp.days_to_payment_prior)
               if fp.days_to_payment and fp.days_to_payment_prior else math.nan)
    if not _significant(fp.payment_trend_ks_p_value):
        payment = 0.0
    return [logit, denial_trend, log(fp.days_to_payment), payment, log(fp.price_index),
            log(1 + fp.price_trend) if fp.price_trend is not None else math.nan]


def _significant(p_value: float | None) -> bool:
    return p_value is not None and p_value < TREND_ALPHA


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def standardise(matrix: Matrix, reference: Matrix | None = None) -> Matrix:
    """Robust z per column against `reference` (default: the matrix itself); a missing value
    becomes 0 (the practice's typical payer)."""
    base = matrix if reference is None else reference
    with warnings.catch_warnings():  # a measure no payer has (e.g. no prices) is all NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        centre = np.nan_to_num(np.nanmedian(base, axis=0), nan=0.0)
        mad = np.nanmedian(np.abs(base - centre), axis=0) * 1.4826
    scale = np.maximum(np.nan_to_num(mad, nan=0.0), MIN_SCALE)
    return np.asarray(np.nan_to_num((matrix - centre) / scale, nan=0.0), dtype=float)


def problem_scores(z: Sequence[float] | Matrix) -> dict[str, float]:
    rate, rate_trend, days, days_trend, price, price_trend = z
    return {AGGRESSIVE_DENIER: max(rate, rate_trend), SLOW_PAYER: max(days, days_trend),
            UNDERPAYER: max(-price, -price_trend), PROMPT_PAYER: -days}


def name(z: Sequence[float] | Matrix) -> str:
    scores = problem_scores(z)
    problems = {k: v for k, v in scores.items() if k != PROMPT_PAYER and v >= NAME_Z}
    if problems:
        return max(problems, key=lambda k: problems[k])
    if scores[PROMPT_PAYER] >= NAME_Z and scores[AGGRESSIVE_DENIER] < NAME_Z:
        return PROMPT_PAYER
    return TYPICAL


def silhouette(points: Matrix, labels: npt.NDArray[np.int_]) -> float:
    """Mean silhouette width; 0 when fewer than two clusters."""
    clusters = np.unique(labels)
    if len(clusters) < 2:
        return 0.0
    distance = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=2))
    widths = []
    for i, own in enumerate(labels):
        mates = (labels == own) & (np.arange(len(points)) != i)
        if not mates.any():
            widths.append(0.0)  # a singleton's silhouette is 0 by convention
            continue
        a = distance[i, mates].mean()
        b = min(distance[i, labels == other].mean() for other in clusters if other != own)
        widths.append((b - a) / max(a, b) if max(a, b) > 0 else 0.0)
    return float(np.mean(widths))


def _kmeans(points: Matrix, k: int, seed: int) -> tuple[Matrix, npt.NDArray[np.int_]]:
    rng = np.random.default_rng(seed)
    best: tuple[float, Matrix, npt.NDArray[np.int_]] | None = None
    for _ in range(RESTARTS):
        centroids, labels = kmeans2(points, k, minit="++", seed=rng)
        inertia = float(((points - centroids[labels]) ** 2).sum())
        if best is None or inertia < best[0]:
            best = (inertia, centroids, labels)
    assert best is not None
    return best[1], best[2]


def cluster(points: Matrix, seed: int = 0) -> tuple[Matrix, npt.NDArray[np.int_], float]:
    """(centroids, labels, silhouette) for the k of the best silhouette; each point its own
    cluster when there is no substantial structure."""
    n = len(points)
    own = (points.copy(), np.arange(n), 0.0)
    if n < 4 or len(np.unique(points, axis=0)) < 3:
        return own
    best = own
    for k in range(2, min(MAX_K, n - 1) + 1):
        centroids, labels = _kmeans(points, k, seed + k)
        width = silhouette(points, labels)
        if width > best[2]:
            best = (centroids, labels, width)
    return best if best[2] >= MIN_SILHOUETTE else own


def cluster_centres(z: Matrix, labels: npt.NDArray[np.int_]) -> dict[int, Matrix]:
    """Each cluster's median fingerprint: what the rule names. The k-means mean would let one
    extreme member name every payer it happens to cluster with."""
    return {int(label): np.asarray(np.median(z[labels == label], axis=0), dtype=float)
            for label in np.unique(labels)}


def payer_name(own: str, cluster_name: str) -> str:
    """Rule 4's order: the payer's own problem, its cluster's problem, the payer's own
    promptness, its cluster's, else Typical."""
    for candidate in (own, cluster_name):
        if candidate in PROBLEMS:
            return candidate
    return own if own != TYPICAL else cluster_name


def assign(prints: Sequence[Fingerprint], seed: int = 0) -> list[Assignment]:
    """Each payer's archetype with the evidence behind it."""
    ready = [fp for fp in prints if fp.decided_recent >= MIN_LINES]
    assignments = [Assignment(fp.payer, TYPICAL, None, None, {}, {},
                              f"fewer than {MIN_LINES} decided lines in the recent quarter")
                   for fp in prints if fp.decided_recent < MIN_LINES]
    if len(ready) < MIN_PAYERS:
        return sorted(assignments + [
            Assignment(fp.payer, TYPICAL, None, None, {}, {},
                       f"fewer than {MIN_PAYERS} payers with enough data: archetypes compare a "
                       "payer with the practice's others") for fp in ready],
            key=lambda a: a.payer)
    raw = np.array([features(fp) for fp in ready])
    z = standardise(raw)
    centroids, labels, width = cluster(z, seed)
    clustered = len(centroids) < len(z)
    centres = cluster_centres(z, labels)
    names = [payer_name(name(z[i]), name(centres[label])) for i, label in enumerate(labels)]
    stability = _stability(raw, len(centroids), names, seed) if clustered else None
    for i, fp in enumerate(ready):
        stable = stability[i] if stability is not None else None
        note = (f"cluster {int(labels[i])} of {len(centroids)} (silhouette {width:.2f})"
                if clustered else "named on its own fingerprint (no cluster structure among "
                "this practice's payers)")
        if names[i] != name(centres[labels[i]]):
            note += "; stands out from its cluster"
        if stable is not None and stable < STABLE:
            note += "; tentative: the name changes in many bootstrap resamples"
        assignments.append(Assignment(
            fp.payer, names[i], stable, int(labels[i]) if clustered else None,
            {f: round(float(v), 2) for f, v in zip(FEATURES, z[i], strict=True)},
            {k: round(float(v), 2) for k, v in problem_scores(z[i]).items()}, note))
    return sorted(assignments, key=lambda a: a.payer)


def _stability(raw: Matrix, k: int, names: list[str], seed: int) -> list[float]:
    rng = np.random.default_rng(seed + 1000)
    agree = np.zeros(len(raw))
    runs = 0
    for _ in range(BOOTSTRAPS):
        sample = raw[rng.integers(0, len(raw), len(raw))]
        z_sample = standardise(sample, sample)
        if len(np.unique(z_sample, axis=0)) < k:
            continue
        centroids, labels = kmeans2(z_sample, k, minit="++", seed=rng)
        centres = cluster_centres(z_sample, labels)
        z_all = standardise(raw, sample)
        nearest = ((z_all[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
        agree += [payer_name(name(z_all[i]), name(centres.get(int(c), centroids[c]))) == names[i]
                  for i, c in enumerate(nearest)]
        runs += 1
    return [round(float(a / runs), 2) if runs else 0.0 for a in agree]
