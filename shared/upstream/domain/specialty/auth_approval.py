"""Will the payer approve this authorization request, and for how many units? (ABA first;
a template for every specialty that lives on prior authorizations.)

Learned from the practice's own decided requests (authorizations with `decision`,
`units_requested`, `decision_date`), so it speaks for its payers and its case mix:

- Approval: penalised logistic regression (statsmodels GLM Binomial, L2) of approved-or-
  partially-approved on the payer (one indicator per payer with at least `MIN_PAYER_REQUESTS`
  decided requests; the rest pooled), the request's intensity (log units per month), whether
  it renews an earlier request of the same patient with the same payer, and the service type.
- Approved units, given approval: a fractional logit (Papke & Wooldridge 1996, *J. Applied
  Econometrics* 11:619) of the approved share of the requested units on the same features:
  a share lives in [0, 1], which a linear model ignores.
- Judged on time: fitted on the earlier decisions, scored on the latest ones (by decision
  date): at least `HOLDOUT_SHARE` of them, reaching back until the hold-out holds
  `MIN_DENIALS` denials (an AUC on a hold-out without denials says nothing): AUC and Brier
  of approval, mean absolute error of approved units against the naive answer "this payer's
  average share".

A prediction says its reasons: the terms that move the log-odds most, in words.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

MIN_REQUESTS, MIN_DENIALS = 60, 5
MIN_PAYER_REQUESTS = 10
HOLDOUT_SHARE = 0.25
RIDGE_ALPHA = 1e-2
APPROVED = frozenset({"approved", "partial"})


@dataclass(frozen=True)
class Request:
    payer: str
    units: float
    months: float
    renewal: bool
    service_type: str = ""


@dataclass(frozen=True)
class Decided:
    request: Request
    decided: date
    approved: bool
    share: float  # approved units / requested (0 when denied)


@dataclass(frozen=True)
class ApprovalModel:
    terms: tuple[str, ...]
    approval: tuple[float, ...]
    units: tuple[float, ...]
    payers: tuple[str, ...]
    services: tuple[str, ...]
    evaluation: Mapping[str, Any]
    centre: float = 0.0  # the training requests' mean log units a month

    def row(self, request: Request) -> list[float]:
        return _row(request, self.payers, self.services, self.centre)

    def predict(self, request: Request) -> dict[str, Any]:
        x = self.row(request)
        p = _sigmoid(float(np.dot(self.approval, x)))
        share = _sigmoid(float(np.dot(self.units, x)))
        effects = sorted(((w * v, t) for w, v, t in zip(self.approval, x, self.terms,
                                                        strict=True) if t != "intercept" and v),
                         key=lambda e: -abs(e[0]))[:3]
        return {"approval_probability": round(p, 3),
                "expected_units_if_approved": round(request.units * share),
                "expected_share_if_approved": round(share, 3),
                "reasons": [f"{_words(term, request)} {'raises' if effect > 0 else 'lowers'} "
                            f"the odds of approval ×{math.exp(effect):.2f}"
                            for effect, term in effects]}


def decided_requests(authorizations: Sequence[Mapping[str, Any]]) -> list[Decided]:
    """Requests with a final answer and the units asked for, oldest first; a renewal is a
    request whose patient had an earlier decided request with the same payer."""
    usable = []
    for auth in authorizations:
        decision = auth.get("decision")
        requested = auth.get("units_requested")
        if decision not in ("approved", "partial", "denied") or not requested \
                or not auth.get("decision_date") or not auth.get("start_date"):
            continue
        usable.append(auth)
    usable.sort(key=lambda a: (str(a["decision_date"]), str(a.get("authorization_number"))))
    seen: set[tuple[str, str]] = set()
    out = []
    for auth in usable:
        start, end = _day(auth["start_date"]), _day(auth["end_date"])
        patient = str(auth.get("patient_key") or auth.get("patient_id") or "")
        key = (patient, str(auth.get("payer")))
        months = max(1.0, (end - start).days / 30.4)
        requested = float(auth["units_requested"])
        approved = auth["decision"] in APPROVED
        granted = float(auth.get("units_authorized") or 0)
        share = min(1.0, granted / requested) if approved and requested else 0.0
        out.append(Decided(Request(str(auth.get("payer")), requested, months,
                                   bool(patient) and key in seen,
                                   str(auth.get("service_type") or "")),
                           _day(auth["decision_date"]), approved,
                           share if auth["decision"] == "partial" else (1.0 if approved else 0)))
        if patient:
            seen.add(key)
    return out


def fit(history: Sequence[Decided]) -> ApprovalModel | None:
    """None when the history is too thin to say anything a payer call could rely on."""
    if len(history) < MIN_REQUESTS or sum(not d.approved for d in history) < MIN_DENIALS:
        return None
    cut = int(len(history) * (1 - HOLDOUT_SHARE))
    while cut > len(history) // 2 and sum(not d.approved for d in history[cut:]) < MIN_DENIALS:
        cut -= 1
    train, test = history[:cut], history[cut:]
    model = _fit(train)
    if model is None:
        return None
    evaluation = _evaluate(model, train, test)
    final = _fit(history)
    if final is None:
        return None
    return ApprovalModel(final.terms, final.approval, final.units, final.payers, final.services,
                         evaluation, final.centre)


def _fit(history: Sequence[Decided]) -> ApprovalModel | None:
    import statsmodels.api as sm

    counts: dict[str, int] = {}
    for d in history:
        counts[d.request.payer] = counts.get(d.request.payer, 0) + 1
    payers = tuple(sorted(p for p, n in counts.items() if n >= MIN_PAYER_REQUESTS))[1:]
    services = tuple(sorted({d.request.service_type for d in history} - {""}))[1:]
    centre = statistics_mean([_intensity(d.request) for d in history])
    x = np.array([_row(d.request, payers, services, centre) for d in history])
    approved = np.array([d.approved for d in history], dtype=float)
    granted = [i for i, d in enumerate(history) if d.approved]
    if approved.sum() in (0, len(approved)) or len(granted) < MIN_PAYER_REQUESTS:
        return None
    try:
        approval = sm.GLM(approved, x, family=sm.families.Binomial()).fit_regularized(
            alpha=RIDGE_ALPHA, L1_wt=0.0).params
        shares = np.array([history[i].share for i in granted])
        units = sm.GLM(shares, x[granted], family=sm.families.Binomial()).fit_regularized(
            alpha=RIDGE_ALPHA, L1_wt=0.0).params
    except (ValueError, ArithmeticError, np.linalg.LinAlgError):
        return None
    if not (np.all(np.isfinite(approval)) and np.all(np.isfinite(units))):
        return None
    terms = ("intercept", "log_units_per_month", "renewal",
             *(f"payer:{p}" for p in payers), *(f"service:{s}" for s in services))
    return ApprovalModel(terms, tuple(map(float, approval)), tuple(map(float, units)), payers,
                         services, {}, centre)


def _evaluate(model: ApprovalModel, train: Sequence[Decided],
              test: Sequence[Decided]) -> dict[str, Any]:
    from upstream.domain.risk.calibrate import auc

    predicted = [model.predict(d.request) for d in test]
    p = [x["approval_probability"] for x in predicted]
    outcome = [d.approved for d in test]
    granted = [(x, d) for x, d in zip(predicted, test, strict=True) if d.approved]
    payer_share: dict[str, list[float]] = {}
    for d in train:
        if d.approved:
            payer_share.setdefault(d.request.payer, []).append(d.share)
    overall = statistics_mean([d.share for d in train if d.approved])
    naive = [abs(d.request.units * statistics_mean(payer_share.get(d.request.payer, [overall]))
                 - d.request.units * d.share) for _, d in granted]
    ours = [abs(x["expected_units_if_approved"] - d.request.units * d.share) for x, d in granted]
    return {"train_requests": len(train), "holdout_requests": len(test),
            "holdout_from": test[0].decided.isoformat() if test else None,
            "approval_auc": auc(p, outcome),
            "approval_brier": round(statistics_mean([(q - o) ** 2
                                                     for q, o in zip(p, outcome, strict=True)]),
                                    4) if test else None,
            "units_mae": round(statistics_mean(ours), 1) if ours else None,
            "units_mae_payer_average": round(statistics_mean(naive), 1) if naive else None}


def statistics_mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0


def _intensity(request: Request) -> float:
    return math.log(max(request.units, 1.0) / max(request.months, 1.0))


def _row(request: Request, payers: Sequence[str], services: Sequence[str],
         centre: float) -> list[float]:
    """Intensity centred on the practice's usual request, so its term in the reasons says
    how this request differs from the usual one."""
    return [1.0, _intensity(request) - centre,
            1.0 if request.renewal else 0.0,
            *(1.0 if request.payer == p else 0.0 for p in payers),
            *(1.0 if request.service_type == s else 0.0 for s in services)]


def _words(term: str, request: Request) -> str:
    if term == "log_units_per_month":
        return f"asking {request.units / request.months:.0f} units a month (against the usual)"
    if term == "renewal":
        return "renewing an earlier authorization"
    kind, _, name = term.partition(":")
    return f"the payer being {name}" if kind == "payer" else f"the service being {name}"


def _sigmoid(value: float) -> float:
    return 1 / (1 + math.exp(-max(-30.0, min(30.0, value))))


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
