"""The calibrated score: the rule factors re-weighted on the tenant's own history, so that a
score of 70 means a 70% chance of denial there, measured rather than assumed.

Model: logistic regression on the rule factors (each factor's points scaled to 0–1, one
indicator per authorization problem), ridge-penalised so a factor seen a handful of times
cannot take an extreme weight (statsmodels GLM Binomial, `fit_regularized`, L2). A logistic
model keeps the explanation exact: each factor's contribution is its coefficient × its value
in log-odds, reported per line. Score = round(100 × P(denied)).

Trained only where history can carry it (`MIN_TRAIN_LINES` decided lines, `MIN_TRAIN_DENIALS`
denials); otherwise the rule score stands. Evaluated with temporal splits: fit on months
before M, score month M (`temporal_evaluation`), never the other way round.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from upstream.domain.risk.score import (
    RECOMMENDATION,
    Factor,
    LineScore,
    category,
)

FEATURES = ("historical_denial_rate", "modifier_missing", "modifier_wrong", "recent_denials",
            "diagnosis_mismatch", "authorization", "credential_code_mismatch",
            "units_exceed_minutes")
SCALE = {"historical_denial_rate": 40, "modifier_missing": 20, "modifier_wrong": 15,
         "recent_denials": 20, "diagnosis_mismatch": 10, "authorization": 10,
         "credential_code_mismatch": 15, "units_exceed_minutes": 10}
# Below these a logistic fit is mostly prior: 20 denials is the usual events-per-variable
# floor for a handful of predictors (Peduzzi et al. 1996 ask for 10 per variable; we have 6
# and a penalty).
MIN_TRAIN_LINES, MIN_TRAIN_DENIALS = 200, 20
WORDS = {"historical_denial_rate": "this payer's denial history for this code",
         "modifier_missing": "a required modifier is missing",
         "modifier_wrong": "the modifier does not fit the code",
         "recent_denials": "recent denials of this code by this payer",
         "diagnosis_mismatch": "the diagnosis does not support the code",
         "authorization": "the authorization is missing, ended or used up",
         "credential_code_mismatch": "the provider's credential does not fit the code",
         "units_exceed_minutes": "more units billed than the minutes support"}
RIDGE_ALPHA = 1e-3


def features(factors: Sequence[Factor]) -> list[float]:
    points = {f.name: f.points for f in factors}
    return [points.get(name, 0) / SCALE[name] for name in FEATURES]


@dataclass(frozen=True, slots=True)
class Calibrated:
    intercept: float
    weights: tuple[float, ...]
    trained_lines: int
    trained_denials: int

    def probability(self, row: Sequence[float]) -> float:
        logit = self.intercept + sum(w * x for w, x in zip(self.weights, row, strict=True))
        return 1 / (1 + math.exp(-max(-30.0, min(30.0, logit))))

    def rescore(self, line: LineScore, claim_line: object = None) -> LineScore:
        """`claim_line` is unused: the logistic reads the factors only (the boosted model
        also reads the payer and the code)."""
        row = features(line.factors)
        p = self.probability(row)
        score = round(100 * p)
        band = category(score)
        explained = [Factor(f.name, f.points, {**f.evidence, "log_odds": round(
            self.weights[FEATURES.index(f.name)] * row[FEATURES.index(f.name)], 3)})
            if f.name in FEATURES else f for f in line.factors]
        contributions = sorted(
            ((self.weights[FEATURES.index(f.name)] * row[FEATURES.index(f.name)], f.name)
             for f in line.factors if f.name in FEATURES), reverse=True)
        reasons = tuple(f"{WORDS.get(name, name)} (raises the odds ×{math.exp(value):.1f})"
                        for value, name in contributions[:3] if value > 0.05)
        return LineScore(line.claim_id, line.line, score, band, RECOMMENDATION[band], explained,
                         line.fixes, method="calibrated", denial_probability=round(p, 4),
                         reasons=reasons)


def fit(rows: Sequence[Sequence[float]], denied: Sequence[bool]) -> Calibrated | None:
    """None when history is too thin to trust (the rule score stands)."""
    import statsmodels.api as sm  # fitting only: scoring with a stored model needs none of it

    y = np.asarray(denied, dtype=float)
    if len(y) < MIN_TRAIN_LINES or y.sum() < MIN_TRAIN_DENIALS or y.sum() == len(y):
        return None
    x = sm.add_constant(np.asarray(rows, dtype=float), has_constant="add")
    try:
        model = sm.GLM(y, x, family=sm.families.Binomial()).fit_regularized(
            alpha=RIDGE_ALPHA, L1_wt=0.0)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError):
        return None  # a fit that fails leaves the rule score in place, never a broken run
    params = np.asarray(model.params, dtype=float)
    if not np.all(np.isfinite(params)):
        return None
    return Calibrated(float(params[0]), tuple(float(v) for v in params[1:]), len(y), int(y.sum()))


def auc(scores: Sequence[float], denied: Sequence[bool]) -> float | None:
    """Area under the ROC curve = P(a denied line outscores a paid one), ties half (the
    Mann–Whitney U statistic over n₁n₀)."""
    from scipy.stats import mannwhitneyu

    positive = [s for s, d in zip(scores, denied, strict=True) if d]
    negative = [s for s, d in zip(scores, denied, strict=True) if not d]
    if not positive or not negative:
        return None
    statistic = mannwhitneyu(positive, negative, alternative="two-sided").statistic
    return float(statistic) / (len(positive) * len(negative))


def band_precision(scores: Sequence[float], denied: Sequence[bool],
                   at_least: float = 70) -> tuple[float | None, int]:
    """Share of lines scored ≥ `at_least` (HIGH) that were denied, and how many there were."""
    chosen = [d for s, d in zip(scores, denied, strict=True) if s >= at_least]
    return (sum(chosen) / len(chosen) if chosen else None), len(chosen)


def to_document(model: Calibrated) -> dict[str, object]:
    return {"kind": "logistic", "features": list(FEATURES), "intercept": model.intercept,
            "weights": list(model.weights), "trained_lines": model.trained_lines,
            "trained_denials": model.trained_denials}


def from_document(document: object) -> Calibrated | None:
    """A stored model, or None when absent or fitted on other features (then rules stand)."""
    if not isinstance(document, dict) or document.get("features") != list(FEATURES) \
            or document.get("kind", "logistic") != "logistic":
        return None
    try:
        weights = tuple(float(w) for w in document["weights"])
        model = Calibrated(float(document["intercept"]), weights,
                           int(document.get("trained_lines", 0)),
                           int(document.get("trained_denials", 0)))
    except (KeyError, TypeError, ValueError):
        return None
    finite = all(math.isfinite(v) for v in (model.intercept, *weights))
    return model if finite and len(weights) == len(FEATURES) else None
