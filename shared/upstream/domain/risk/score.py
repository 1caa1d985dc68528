"""The pre-submission risk score (0–100) of a claim line, with the reasons behind it.

The rule score is the seeds' factors, each visible with its points and evidence:

- historical denial rate of the payer×CPT cell, up to 40 points. Points = 40 × rate / 0.5,
  capped: a cell denying half of its lines is as bad as history can say. Below
  `MIN_CELL_LINES` decided lines the CPT's rate across payers stands in (seeds), and with
  fewer than that too, history says nothing (0 points, and the factor says so);
- a required modifier missing (20) or the wrong level/discipline modifier (15), from the
  payer rules table;
- recent denials of the payer×CPT in the last 30 days: ≥ 3 → 20, ≥ 1 → 10 (seeds);
- diagnosis–CPT mismatch from the diagnosis rules table (10);
- authorization required but missing or expired on the date of service (10).

Sum capped at 100. LOW < 40, MEDIUM 40–69, HIGH ≥ 70; SUBMIT / REVIEW / HOLD follow the band.
A claim's score is its worst line's. Pure: history and rules come in, nothing is fetched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from upstream.domain.aggregates import DailyCell
from upstream.domain.risk.rules import RulesTable
from upstream.domain.values import as_day

MIN_CELL_LINES = 10  # seeds: fall back to the CPT's rate across payers below 10 lines
HISTORY_DAYS = 180  # two quarters: long enough for a small cell, short enough to follow policy
STREAK_DAYS = 30
RATE_POINTS, RATE_SATURATION = 40, 0.5
STREAK_POINTS = ((3, 20), (1, 10))
DIAGNOSIS_POINTS = 10
AUTH_POINTS = 10
MEDIUM_AT, HIGH_AT = 40, 70
# An auto-fix's confidence is what the rules table can promise: one modifier the rule allows
# and a credential that picks it is certain enough to propose; several allowed is a guess.
FIX_CONFIDENCE_SINGLE, FIX_CONFIDENCE_CHOICE = 97, 60
UNCONFIRMED_CONVENTION = (
    "level modifiers (HM/HN/HO/HP) differ by state program and plan, and this practice's "
    "convention is not on file: confirm it in the payer's billing guide, then add it as a "
    "practice rule (settings → risk rules, with the state)")


@dataclass(frozen=True, slots=True)
class Stats:
    decided: float = 0.0
    denied: float = 0.0

    @property
    def rate(self) -> float | None:
        return self.denied / self.decided if self.decided else None


@dataclass(frozen=True, slots=True)
class DenialHistory:
    """Decided and denied lines per payer×CPT and per CPT over `HISTORY_DAYS`, and denials of
    the last `STREAK_DAYS`, from the detectors' daily aggregates."""

    pairs: Mapping[tuple[str, str], Stats] = field(default_factory=dict)
    cpts: Mapping[str, Stats] = field(default_factory=dict)
    recent: Mapping[tuple[str, str], float] = field(default_factory=dict)

    @classmethod
    def from_cells(cls, cells: Iterable[DailyCell], as_of: date) -> DenialHistory:
        first, streak_from = as_of - timedelta(days=HISTORY_DAYS), as_of - timedelta(
            days=STREAK_DAYS)
        pairs: dict[tuple[str, str], list[float]] = {}
        recent: dict[tuple[str, str], float] = {}
        for cell in cells:
            if not first <= cell.day < as_of:
                continue
            for name, amount in cell.counters.items():
                parts = name.split(".")
                if len(parts) != 3 or parts[0] != "cpt" or parts[2] not in ("decided", "denied"):
                    continue
                key = (cell.payer, parts[1])
                totals = pairs.setdefault(key, [0.0, 0.0])
                totals[0 if parts[2] == "decided" else 1] += float(amount or 0)
                if parts[2] == "denied" and cell.day >= streak_from:
                    recent[key] = recent.get(key, 0.0) + float(amount or 0)
        cpts: dict[str, list[float]] = {}
        for (_, cpt), (decided, denied) in pairs.items():
            totals = cpts.setdefault(cpt, [0.0, 0.0])
            totals[0] += decided
            totals[1] += denied
        return cls({k: Stats(*v) for k, v in pairs.items()},
                   {k: Stats(*v) for k, v in cpts.items()}, recent)


def histories_for(cells: Iterable[DailyCell], days: Iterable[date]) -> dict[date, DenialHistory]:
    """`DenialHistory.from_cells(cells, d)` for many days at once, by sliding the two windows
    over the cells once (a year of days costs one pass, not one pass a day)."""
    entries: list[tuple[date, tuple[str, str], float, float]] = []
    for cell in cells:
        for name, amount in cell.counters.items():
            parts = name.split(".")
            if len(parts) == 3 and parts[0] == "cpt" and parts[2] in ("decided", "denied"):
                decided = float(amount or 0) if parts[2] == "decided" else 0.0
                denied = float(amount or 0) if parts[2] == "denied" else 0.0
                entries.append((cell.day, (cell.payer, parts[1]), decided, denied))
    entries.sort(key=lambda e: e[0])
    totals: dict[tuple[str, str], list[float]] = {}
    recent: dict[tuple[str, str], float] = {}
    added = dropped = streak_added = streak_dropped = 0
    found = {}
    for day in sorted(set(days)):
        first, streak_from = day - timedelta(days=HISTORY_DAYS), day - timedelta(days=STREAK_DAYS)
        while added < len(entries) and entries[added][0] < day:
            _, key, decided, denied = entries[added]
            row = totals.setdefault(key, [0.0, 0.0])
            row[0] += decided
            row[1] += denied
            added += 1
        while dropped < added and entries[dropped][0] < first:
            _, key, decided, denied = entries[dropped]
            totals[key][0] -= decided
            totals[key][1] -= denied
            dropped += 1
        while streak_added < added:
            _, key, _, denied = entries[streak_added]
            recent[key] = recent.get(key, 0.0) + denied
            streak_added += 1
        while streak_dropped < streak_added and entries[streak_dropped][0] < streak_from:
            _, key, _, denied = entries[streak_dropped]
            recent[key] -= denied
            streak_dropped += 1
        pairs = {k: Stats(max(0.0, v[0]), max(0.0, v[1])) for k, v in totals.items()
                 if v[0] > 1e-9 or v[1] > 1e-9}
        cpts: dict[str, list[float]] = {}
        for (_, cpt), stats in pairs.items():
            row = cpts.setdefault(cpt, [0.0, 0.0])
            row[0] += stats.decided
            row[1] += stats.denied
        found[day] = DenialHistory(pairs, {k: Stats(*v) for k, v in cpts.items()},
                                   {k: v for k, v in recent.items() if v > 1e-9})
    return found


@dataclass(frozen=True, slots=True)
class Factor:
    name: str
    points: int
    evidence: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Fix:
    action: str  # "add_modifier"
    detail: dict[str, Any]
    confidence: int  # 0–100
    review: str | None = None  # why a person must confirm it, whatever the confidence

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, **self.detail, "confidence": self.confidence,
                **({"review": self.review} if self.review else {})}


@dataclass(frozen=True, slots=True)
class LineScore:
    claim_id: str
    line: int
    score: int
    category: str
    recommendation: str
    factors: list[Factor]
    fixes: list[Fix]
    method: str = "rules"
    denial_probability: float | None = None
    reasons: tuple[str, ...] = ()  # the model's top reasons in words (boosted model)


def category(score: int) -> str:
    return "HIGH" if score >= HIGH_AT else "MEDIUM" if score >= MEDIUM_AT else "LOW"


RECOMMENDATION = {"LOW": "SUBMIT", "MEDIUM": "REVIEW", "HIGH": "HOLD"}




def _history_factor(history: DenialHistory, payer: str, cpt: str) -> Factor:
    cell = history.pairs.get((payer, cpt), Stats())
    if cell.decided >= MIN_CELL_LINES and cell.rate is not None:
        basis, stats = "payer_cpt", cell
    else:
        across = history.cpts.get(cpt, Stats())
        basis, stats = ("cpt_all_payers", across) if across.decided >= MIN_CELL_LINES \
            else ("none", across)
    rate = stats.rate if basis != "none" else None
    points = 0 if rate is None else round(RATE_POINTS * min(1.0, rate / RATE_SATURATION))
    return Factor("historical_denial_rate", points, {
        "basis": basis, "rate": None if rate is None else round(rate, 4),
        "decided": int(stats.decided), "denied": int(stats.denied)})


def _streak_factor(history: DenialHistory, payer: str, cpt: str) -> Factor | None:
    denials = history.recent.get((payer, cpt), 0.0)
    points = next((p for at_least, p in STREAK_POINTS if denials >= at_least), 0)
    return Factor("recent_denials", points, {"denials_last_30_days": int(denials)}) \
        if points else None


def _auth_factor(line: Mapping[str, Any], rules: RulesTable,
                 auths: Sequence[Mapping[str, Any]], service: date | None) -> Factor | None:
    payer, cpt = str(line.get("payer") or ""), str(line.get("cpt") or "")
    rule = rules.prior_auth_rule(payer, cpt)
    if rule is None:
        return None
    number = line.get("authorization_number")
    on_file = [a for a in auths if number and a.get("authorization_number") == number]
    if not number or not on_file:
        problem = "missing" if not number else "not_on_file"
    else:
        start, end = as_day(on_file[0].get("start_date")), as_day(on_file[0].get("end_date"))
        if service is None or start is None or end is None or start <= service <= end:
            return None
        problem = "expired" if service > end else "not_yet_valid"
    return Factor("authorization", AUTH_POINTS, {"problem": problem, "program": rule.program,
                                                 "source": rule.source})


def score_line(line: Mapping[str, Any], history: DenialHistory, rules: RulesTable,
               auths: Sequence[Mapping[str, Any]] = (),
               extra: Sequence[Factor] = ()) -> LineScore:
    """`extra`: factors that need the whole claim (`claim_factors.py`)."""
    payer, cpt = str(line.get("payer") or ""), str(line.get("cpt") or "").upper()
    modifiers = [str(m) for m in line.get("modifiers") or []]
    factors = [_history_factor(history, payer, cpt)]
    fixes: list[Fix] = []
    verdict = rules.modifier_verdict(payer, cpt, modifiers, line.get("provider_credential"),
                                     line.get("plan_type"))
    if verdict is not None:
        factors.append(Factor(f"modifier_{verdict.kind}", verdict.points, {
            "required_one_of": list(verdict.required), "present": modifiers,
            "source": verdict.rule.source}))
        if verdict.kind == "missing":
            single = len(verdict.rule.modifiers) == 1
            fixes.append(Fix("add_modifier", {"modifier": verdict.rule.modifiers[0],
                                              "one_of": list(verdict.required)},
                             FIX_CONFIDENCE_SINGLE if single else FIX_CONFIDENCE_CHOICE,
                             None if verdict.confirmed else UNCONFIRMED_CONVENTION))
    streak = _streak_factor(history, payer, cpt)
    if streak:
        factors.append(streak)
    mismatch = rules.diagnosis_mismatch(cpt, [str(d) for d in line.get("diagnosis_codes") or []])
    if mismatch is not None:
        factors.append(Factor("diagnosis_mismatch", DIAGNOSIS_POINTS, {
            "diagnoses": list(line.get("diagnosis_codes") or []),
            "expected_prefixes": list(mismatch.prefixes), "source": mismatch.source}))
    auth = _auth_factor(line, rules, auths, as_day(line.get("service_date")))
    if auth:
        factors.append(auth)
    factors.extend(extra)
    score = min(100, sum(f.points for f in factors))
    band = category(score)
    return LineScore(str(line.get("claim_id") or ""), int(line.get("line") or 1), score, band,
                     RECOMMENDATION[band], factors, fixes)


def claim_verdict(lines: Sequence[LineScore]) -> dict[str, Any]:
    """A claim is as risky as its worst line; its fixes are every line's."""
    worst = max(lines, key=lambda s: s.score)
    return {"score": worst.score, "category": worst.category,
            "recommendation": worst.recommendation, "worst_line": worst.line}
