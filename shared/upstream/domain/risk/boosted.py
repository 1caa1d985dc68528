"""The boosted denial model: gradient-boosted trees (LightGBM) on the rule factors plus the
payer and the code, explained per line with exact TreeSHAP contributions.

Why beside the calibrated logistic: the logistic weighs each factor once for every payer;
trees learn interactions (a payer that denies one code without its modifier, another that
does not care), which is where a practice's denials concentrate. Why not always: trees need
more history and their explanation is additive only in log-odds contributions, so the weekly
refit adopts whichever model earns it on held-out time (`training.fit_for_tenant`).

- Rolling-origin temporal cross-validation (Tashman 2000, *Int. J. Forecasting* 16:437): for
  each of the last `FOLDS` months before the hold-out, fit on every month before it and
  validate on it, with early stopping on log loss; the number of trees is the median of the
  folds' best iterations. No fold ever sees its future.
- Explanations: LightGBM's `pred_contrib` gives each feature's SHAP value (Lundberg et al.
  2020, *Nature Machine Intelligence* 2:56, TreeSHAP), exact for trees: the contributions and
  the base value add up to the line's log-odds. The top ones are said in words.
- Small, regularised trees (15 leaves, ≥ 20 lines a leaf, L2 1.0, learning rate 0.05): a
  practice has thousands of lines, not millions; deterministic single-threaded fitting so a
  re-run of the weekly refit gives the same model.
"""

from __future__ import annotations

import base64
import math
import statistics
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

import numpy as np

from upstream.domain.risk.calibrate import FEATURES, MIN_TRAIN_DENIALS, MIN_TRAIN_LINES, features
from upstream.domain.risk.calibrate import WORDS as FACTOR_WORDS
from upstream.domain.risk.score import RECOMMENDATION, Factor, LineScore, category

KIND = "boosted"
NAMES = (*FEATURES, "payer", "cpt")
PARAMS: dict[str, Any] = {
    "objective": "binary", "learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 20,
    "lambda_l2": 1.0, "verbose": -1, "deterministic": True, "num_threads": 1, "seed": 7,
    "force_row_wise": True, "max_cat_to_onehot": 8, "cat_smooth": 10.0}
MAX_ROUNDS, EARLY_STOP, FOLDS, MIN_ROUNDS = 400, 30, 3, 10
REASONS_SHOWN = 3
WORDS = {**FACTOR_WORDS, "payer": "how this payer treats such claims",
         "cpt": "how this code fares"}


@dataclass(frozen=True)
class Boosted:
    text: str  # LightGBM's model text
    payers: tuple[str, ...]
    cpts: tuple[str, ...]
    rounds: int
    trained_lines: int
    trained_denials: int
    cv_auc: tuple[float, ...] = field(default=())

    def matrix(self, rows: Sequence[Sequence[float]],
               categories: Sequence[tuple[str, str]]) -> np.ndarray:
        return _matrix(rows, categories, self.payers, self.cpts)

    def probabilities(self, rows: Sequence[Sequence[float]],
                      categories: Sequence[tuple[str, str]]) -> list[float]:
        if not rows:
            return []
        return [float(p) for p in _booster(self.text).predict(self.matrix(rows, categories))]

    def contributions(self, row: Sequence[float], payer: str, cpt: str) -> dict[str, float]:
        """Each feature's SHAP value in log-odds, and `base` (they sum to the line's logit)."""
        values = _booster(self.text).predict(self.matrix([row], [(payer, cpt)]),
                                             pred_contrib=True)[0]
        return {**{n: float(v) for n, v in zip(NAMES, values[:-1], strict=True)},
                "base": float(values[-1])}

    def rescore(self, line: LineScore, claim_line: Mapping[str, Any]) -> LineScore:
        row = features(line.factors)
        payer, cpt = str(claim_line.get("payer") or ""), str(claim_line.get("cpt") or "")
        shap = self.contributions(row, payer, cpt)
        p = 1 / (1 + math.exp(-max(-30.0, min(30.0, sum(shap.values())))))
        score = round(100 * p)
        band = category(score)
        explained = [Factor(f.name, f.points, {**f.evidence, "shap": round(shap[f.name], 3)})
                     if f.name in shap else f for f in line.factors]
        return LineScore(line.claim_id, line.line, score, band, RECOMMENDATION[band], explained,
                         line.fixes, method=KIND, denial_probability=round(p, 4),
                         reasons=reasons(shap, payer, cpt))


def reasons(shap: Mapping[str, float], payer: str, cpt: str) -> tuple[str, ...]:
    """The largest contributions that raise the risk, in words."""
    raising = sorted(((v, n) for n, v in shap.items() if n != "base" and v > 0.05),
                     reverse=True)[:REASONS_SHOWN]
    said = []
    for value, name in raising:
        words = WORDS[name]
        if name == "payer" and payer:
            words = f"how {payer} treats such claims"
        elif name == "cpt" and cpt:
            words = f"how code {cpt} fares"
        said.append(f"{words} (raises the odds ×{math.exp(value):.1f})")
    return tuple(said)


@lru_cache(maxsize=16)
def _booster(text: str) -> Any:
    import lightgbm

    return lightgbm.Booster(model_str=text)


def _matrix(rows: Sequence[Sequence[float]], categories: Sequence[tuple[str, str]],
            payers: Sequence[str], cpts: Sequence[str]) -> np.ndarray:
    """Rule features, then payer and code as category numbers (unseen: missing)."""
    payer_index = {p: i for i, p in enumerate(payers)}
    cpt_index = {c: i for i, c in enumerate(cpts)}
    cats = [[payer_index.get(p, np.nan), cpt_index.get(c, np.nan)] for p, c in categories]
    return np.hstack([np.asarray(rows, dtype=float).reshape(len(rows), len(FEATURES)),
                      np.asarray(cats, dtype=float).reshape(len(rows), 2)])


def fit(rows: Sequence[Sequence[float]], categories: Sequence[tuple[str, str]],
        denied: Sequence[bool], submitted: Sequence[date]) -> Boosted | None:
    """None when history is too thin for the folds (the logistic or the rules stand)."""
    import lightgbm

    y = np.asarray(denied, dtype=float)
    if len(y) < MIN_TRAIN_LINES or y.sum() < MIN_TRAIN_DENIALS or y.sum() == len(y):
        return None
    payers = tuple(sorted({p for p, _ in categories}))
    cpts = tuple(sorted({c for _, c in categories}))
    x = _matrix(rows, categories, payers, cpts)
    months = np.array([d.year * 12 + d.month for d in submitted])
    best, aucs = [], []
    for month in sorted(set(months))[-FOLDS:]:
        train, valid = months < month, months == month
        if y[train].sum() < MIN_TRAIN_DENIALS or not 0 < y[valid].sum() < valid.sum():
            continue
        booster = lightgbm.train(
            PARAMS, _dataset(x[train], y[train]), MAX_ROUNDS,
            valid_sets=[_dataset(x[valid], y[valid])],
            callbacks=[lightgbm.early_stopping(EARLY_STOP, verbose=False)])
        best.append(booster.best_iteration or MAX_ROUNDS)
        aucs.append(_auc(np.asarray(booster.predict(
            x[valid], num_iteration=booster.best_iteration)), y[valid]))
    if not best:
        return None
    rounds = max(MIN_ROUNDS, int(statistics.median(best)))
    final = lightgbm.train(PARAMS, _dataset(x, y), rounds)
    return Boosted(final.model_to_string(), payers, cpts, rounds, len(y), int(y.sum()),
                   tuple(round(a, 4) for a in aucs))


def _dataset(x: np.ndarray, y: np.ndarray) -> Any:
    import lightgbm

    return lightgbm.Dataset(x, y, feature_name=list(NAMES),
                            categorical_feature=["payer", "cpt"], free_raw_data=False)


def _auc(scores: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import mannwhitneyu

    positive, negative = scores[y == 1], scores[y == 0]
    return float(mannwhitneyu(positive, negative).statistic) / (len(positive) * len(negative))


def to_document(model: Boosted) -> dict[str, object]:
    """Compressed: a few hundred trees are ~200 KB of text, ~40 KB deflated."""
    return {"kind": KIND, "features": list(NAMES),
            "model": base64.b64encode(zlib.compress(model.text.encode(), 9)).decode(),
            "payers": list(model.payers), "cpts": list(model.cpts), "rounds": model.rounds,
            "trained_lines": model.trained_lines, "trained_denials": model.trained_denials,
            "cv_auc": list(model.cv_auc)}


def from_document(document: Mapping[str, Any]) -> Boosted | None:
    if document.get("kind") != KIND or document.get("features") != list(NAMES):
        return None
    try:
        text = zlib.decompress(base64.b64decode(str(document["model"]))).decode()
        model = Boosted(text, tuple(map(str, document["payers"])),
                        tuple(map(str, document["cpts"])), int(document["rounds"]),
                        int(document.get("trained_lines", 0)),
                        int(document.get("trained_denials", 0)),
                        tuple(float(a) for a in document.get("cv_auc") or ()))
        _booster(model.text)  # a stored model that LightGBM cannot load is no model
    except Exception:  # noqa: BLE001 - corrupt or foreign: the rules stand, never a crash
        return None
    return model
