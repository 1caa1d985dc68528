"""Fitting a practice's calibrated score on its own history, and deciding whether to use it.

Each decided line becomes a training row: its factors as they were on the day it was
submitted (history = lines decided before that day), and whether it was denied. The model is
judged on the most recent `HOLDOUT_DAYS` of submissions after fitting on everything before
(a temporal split: what it would have said, then what happened). It is adopted only when
that held-out check shows it earns its place: an AUC at least the rule score's, and a HIGH
band (≥ 70) of at least `MIN_HIGH_LINES` lines whose denial rate is at least `MIN_PRECISION`
(the seeds' "≥ 75% of HIGH deny"). Adopted, it is refitted on all rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from upstream.domain.aggregates import DailyCell
from upstream.domain.risk import calibrate
from upstream.domain.risk.claim_factors import claim_factors
from upstream.domain.risk.rules import RulesTable
from upstream.domain.risk.score import histories_for, score_line
from upstream.domain.values import as_day

HOLDOUT_DAYS = 90  # a quarter: enough later lines to judge a band, recent enough to matter
MIN_PRECISION, MIN_HIGH_LINES = 0.75, 20
DECIDED = frozenset({"PAID", "PARTIAL", "DENIED"})


@dataclass(frozen=True, slots=True)
class Row:
    submitted: date
    features: list[float]
    rule_score: int
    denied: bool




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
                            line.get("outcome") == "DENIED"))
    return sorted(rows, key=lambda r: r.submitted)


def fit_for_tenant(rows: Sequence[Row], as_of: date) -> tuple[calibrate.Calibrated | None,
                                                                 dict[str, Any]]:
    """(model to adopt or None, the report that says why)."""
    cut = as_of - timedelta(days=HOLDOUT_DAYS)
    train = [r for r in rows if r.submitted < cut]
    test = [r for r in rows if r.submitted >= cut]
    report: dict[str, Any] = {"as_of": as_of.isoformat(), "train_lines": len(train),
                              "holdout_lines": len(test), "adopted": False, "reason": None}
    model = calibrate.fit([r.features for r in train], [r.denied for r in train])
    if model is None or not test:
        report["reason"] = "history too thin to fit and judge a model"
        return None, report
    denied = [r.denied for r in test]
    scores = [100 * model.probability(r.features) for r in test]
    rule_auc = calibrate.auc([float(r.rule_score) for r in test], denied)
    model_auc = calibrate.auc(scores, denied)
    precision, high = calibrate.band_precision(scores, denied)
    report.update({"rule_auc": rule_auc, "model_auc": model_auc, "high_lines": high,
                   "high_precision": precision})
    good = (model_auc is not None and (rule_auc is None or model_auc >= rule_auc)
            and high >= MIN_HIGH_LINES and precision is not None
            and precision >= MIN_PRECISION)
    if not good:
        report["reason"] = (f"held-out check not met (needs AUC ≥ the rules', ≥ "
                            f"{MIN_HIGH_LINES} HIGH lines at ≥ {MIN_PRECISION:.0%} denied)")
        return None, report
    final = calibrate.fit([r.features for r in rows], [r.denied for r in rows])
    report["adopted"] = final is not None
    return final, report
