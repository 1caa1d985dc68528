"""Fitting a practice's calibrated score on its own history, and deciding whether to use it.

Each decided line becomes a training row: its factors as they were on the day it was
submitted (history = lines decided before that day), and whether it was denied. The model is
judged on the most recent `HOLDOUT_DAYS` of submissions after fitting on everything before
(a temporal split: what it would have said, then what happened). Two candidates are fitted:
the calibrated logistic and the boosted trees (`boosted.py`, with its own rolling-origin
folds inside the training months). A candidate earns its place when the held-out check shows
an AUC at least the rule score's, and a HIGH band (≥ 70) of at least `MIN_HIGH_LINES` lines
whose denial rate is at least `MIN_PRECISION` (the seeds' "≥ 75% of HIGH deny"). Of those
that earn it, the boosted model is adopted only when its held-out AUC beats the logistic's by
`BOOSTED_MARGIN` (its explanation is approximate where the logistic's is exact, so it must
pay for that); adopted, the model is refitted on all rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from upstream.domain.aggregates import DailyCell
from upstream.domain.risk import boosted, calibrate
from upstream.domain.risk.claim_factors import claim_factors
from upstream.domain.risk.rules import RulesTable
from upstream.domain.risk.score import histories_for, score_line
from upstream.domain.values import as_day

HOLDOUT_DAYS = 90  # a quarter: enough later lines to judge a band, recent enough to matter
MIN_PRECISION, MIN_HIGH_LINES = 0.75, 20
BOOSTED_MARGIN = 0.01  # AUC points: beyond the fold-to-fold wobble of a practice's quarter
DECIDED = frozenset({"PAID", "PARTIAL", "DENIED"})


@dataclass(frozen=True, slots=True)
class Row:
    submitted: date
    features: list[float]
    rule_score: int
    denied: bool
    payer: str = ""
    cpt: str = ""




def training_rows(lines: Sequence[Mapping[str, Any]], cells: Sequence[DailyCell],
                  rules: RulesTable) -> list[Row]:
    decided = [line for line in lines if line.get("outcome") in DECIDED
               and as_day(line.get("submitted_date") or line.get("service_date"))]
    histories = histories_for(cells, [d for d in (as_day(line.get("submitted_date")
                                                       or line.get("service_date"))
                                                  for line in decided) if d])
    by_claim: dict[str, list[Mapping[str, Any]]] = {}
    for line in decided:
        by_claim.setdefault(str(line.get("claim_id")), []).append(line)
    rows = []
    for claim_lines in by_claim.values():
        for line, extra in zip(claim_lines, claim_factors(claim_lines), strict=True):
            submitted = as_day(line.get("submitted_date") or line.get("service_date"))
            assert submitted is not None
            found = score_line(line, histories[submitted], rules, (), extra)
            rows.append(Row(submitted, calibrate.features(found.factors), found.score,
                            line.get("outcome") == "DENIED", str(line.get("payer") or ""),
                            str(line.get("cpt") or "")))
    return sorted(rows, key=lambda r: r.submitted)


Model = calibrate.Calibrated | boosted.Boosted


def _fit(kind: str, rows: Sequence[Row]) -> Model | None:
    if kind == "boosted":
        return boosted.fit([r.features for r in rows], [(r.payer, r.cpt) for r in rows],
                           [r.denied for r in rows], [r.submitted for r in rows])
    return calibrate.fit([r.features for r in rows], [r.denied for r in rows])


def _scores(model: Model, rows: Sequence[Row]) -> list[float]:
    if isinstance(model, boosted.Boosted):
        return [100 * p for p in model.probabilities([r.features for r in rows],
                                                     [(r.payer, r.cpt) for r in rows])]
    return [100 * model.probability(r.features) for r in rows]


def fit_for_tenant(rows: Sequence[Row], as_of: date) -> tuple[Model | None, dict[str, Any]]:
    """(model to adopt or None, the report that says why)."""
    cut = as_of - timedelta(days=HOLDOUT_DAYS)
    train = [r for r in rows if r.submitted < cut]
    test = [r for r in rows if r.submitted >= cut]
    report: dict[str, Any] = {"as_of": as_of.isoformat(), "train_lines": len(train),
                              "holdout_lines": len(test), "adopted": False, "reason": None,
                              "kind": None}
    fitted = {kind: model for kind in ("logistic", "boosted")
              if (model := _fit(kind, train)) is not None}
    if not fitted or not test:
        report["reason"] = "history too thin to fit and judge a model"
        return None, report
    denied = [r.denied for r in test]
    rule_auc = calibrate.auc([float(r.rule_score) for r in test], denied)
    report["rule_auc"] = rule_auc
    earned: dict[str, float] = {}
    for kind, model in fitted.items():
        scores = _scores(model, test)
        model_auc = calibrate.auc(scores, denied)
        precision, high = calibrate.band_precision(scores, denied)
        report[kind] = {"auc": model_auc, "high_lines": high, "high_precision": precision}
        if (model_auc is not None and (rule_auc is None or model_auc >= rule_auc)
                and high >= MIN_HIGH_LINES and precision is not None
                and precision >= MIN_PRECISION):
            earned[kind] = model_auc
    logistic = report.get("logistic") or {}  # the logistic's figures, as reports always had
    report.update({"model_auc": logistic.get("auc"), "high_lines": logistic.get("high_lines"),
                   "high_precision": logistic.get("high_precision")})
    if not earned:
        report["reason"] = (f"held-out check not met (needs AUC ≥ the rules', ≥ "
                            f"{MIN_HIGH_LINES} HIGH lines at ≥ {MIN_PRECISION:.0%} denied)")
        return None, report
    kind = "boosted" if "boosted" in earned and (
        "logistic" not in earned or earned["boosted"] >= earned["logistic"] + BOOSTED_MARGIN) \
        else "logistic"
    final = _fit(kind, rows)
    report.update({"adopted": final is not None, "kind": kind})
    return final, report
