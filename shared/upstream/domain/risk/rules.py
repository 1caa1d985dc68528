"""The rules tables behind the risk score: required modifiers by payer and CPT, diagnosis–CPT
fit, and prior-authorization requirements (the radiology benefit managers' lists, ABA).

Shipped as CSV files in `data/`, each row naming its source, so a billing manager can read
why a line was flagged and correct a row. A tenant's own rows (`risk_rules` in its document)
are layered on top: a tenant row replaces the default rows for the same payer and CPT.

Conflicts: two rows of one layer for the same payer, CPT and credential that demand
different modifiers are both kept and reported (`conflicts`), and a line satisfying either is
accepted — a table error must not make every line look wrong.
"""

from __future__ import annotations

import csv
import importlib.resources
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

ANY_PAYER = "*"


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip().upper() for v in (value or "").split("|") if v.strip())


@dataclass(frozen=True, slots=True)
class ModifierRule:
    payer: str
    cpts: tuple[str, ...]
    modifiers: tuple[str, ...]  # one of these is required
    credential: str | None  # the rule applies to lines rendered by this credential only
    points_missing: int
    points_wrong: int
    source: str
    except_payers: frozenset[str] = frozenset()  # a "*" row a practice replaced for these
    state: str = ANY_PAYER  # two-letter state, or "*"
    plan: str = ANY_PAYER  # plan type as claims carry it (e.g. "Medicaid"), or "*"
    # "national": one rule everywhere (CMS therapy modifiers); "varies": a convention that
    # differs by state program and plan, advice only until confirmed for the practice's
    # state; "practice": the practice's own row.
    convention: str = "national"

    def confirmed_for(self, state: str | None) -> bool:
        return self.convention != "varies" or (self.state != ANY_PAYER and self.state == state)


@dataclass(frozen=True, slots=True)
class DiagnosisRule:
    cpts: tuple[str, ...]
    prefixes: tuple[str, ...]
    source: str


@dataclass(frozen=True, slots=True)
class PriorAuthRule:
    payer: str
    cpts: tuple[str, ...]
    program: str
    source: str


@dataclass(frozen=True, slots=True)
class ModifierVerdict:
    kind: str  # "missing" or "wrong"
    points: int
    required: tuple[str, ...]
    rule: ModifierRule
    confirmed: bool = True  # False: a convention not known for this practice's state and plan


@dataclass(frozen=True, slots=True)
class RulesTable:
    modifiers: tuple[ModifierRule, ...] = ()
    diagnoses: tuple[DiagnosisRule, ...] = ()
    prior_auth: tuple[PriorAuthRule, ...] = ()
    conflicts: tuple[str, ...] = field(default=())
    state: str | None = None  # the practice's state (tenant setting), for "varies" rows

    def modifier_verdict(self, payer: str, cpt: str, modifiers: Sequence[str],
                         credential: str | None, plan: str | None = None,
                         ) -> ModifierVerdict | None:
        """The worst unmet modifier rule for this line, or None."""
        have = {m.upper() for m in modifiers}
        plan_key = (plan or "").strip().lower()
        rules = [r for r in self.modifiers if cpt in r.cpts and r.payer in (payer, ANY_PAYER)
                 and payer not in r.except_payers
                 and r.state in (ANY_PAYER, self.state)
                 and (r.plan == ANY_PAYER or r.plan.lower() == plan_key)
                 and (r.credential is None or r.credential == (credential or "").upper())]
        if not rules:
            return None
        by_scope: dict[tuple[str, str | None], list[ModifierRule]] = {}
        for rule in rules:
            by_scope.setdefault((rule.payer, rule.credential), []).append(rule)
        worst: ModifierVerdict | None = None
        for scoped in by_scope.values():  # conflicting rows of one scope: either will do
            if any(have & set(r.modifiers) for r in scoped):
                continue
            rule = max(scoped, key=lambda r: r.points_missing)
            required = tuple(sorted({m for r in scoped for m in r.modifiers}))
            kind = "wrong" if _is_wrong_level(required, have) else "missing"
            points = rule.points_wrong if kind == "wrong" else rule.points_missing
            if worst is None or points > worst.points:
                confirmed = all(r.confirmed_for(self.state) for r in scoped)
                worst = ModifierVerdict(kind, points, required, rule, confirmed)
        return worst

    def diagnosis_mismatch(self, cpt: str, diagnoses: Sequence[str]) -> DiagnosisRule | None:
        """The rule this line's diagnoses fail, or None (no rule, or no diagnosis to judge:
        a missing diagnosis is a clearinghouse edit, not a fit question)."""
        codes = [d.upper().replace(".", "") for d in diagnoses if d]
        if not codes:
            return None
        for rule in self.diagnoses:
            if cpt in rule.cpts and not any(c.startswith(p.replace(".", ""))
                                             for c in codes for p in rule.prefixes):
                return rule
        return None

    def prior_auth_rule(self, payer: str, cpt: str) -> PriorAuthRule | None:
        exact = [r for r in self.prior_auth if r.payer == payer and cpt in r.cpts]
        general = [r for r in self.prior_auth if r.payer == ANY_PAYER and cpt in r.cpts]
        found = exact or general
        return found[0] if found else None


# A level modifier present but not the one required is "wrong", not "missing" (ABA HN/HO/HP,
# therapy GP/GO/GN): the line was coded with intent, at the wrong level or discipline.
_LEVEL_GROUPS = (frozenset({"HM", "HN", "HO", "HP"}), frozenset({"GN", "GO", "GP"}))


def _is_wrong_level(required: Iterable[str], have: set[str]) -> bool:
    wanted = set(required)
    return any(group & wanted and group & have for group in _LEVEL_GROUPS)


def _rows(name: str) -> list[dict[str, str]]:
    text = importlib.resources.files("upstream.domain.risk").joinpath(f"data/{name}").read_text(
        encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def _modifier_rule(row: Mapping[str, Any], convention: str | None = None) -> ModifierRule:
    credential = str(row.get("when_credential") or "").strip().upper() or None
    return ModifierRule(str(row.get("payer") or ANY_PAYER).strip(), _split(row.get("cpt")),
                        _split(row.get("modifiers")), credential,
                        _points(row.get("points_missing"), 20),
                        _points(row.get("points_wrong"), 15), str(row.get("source") or ""),
                        state=str(row.get("state") or ANY_PAYER).strip().upper()
                        .replace(ANY_PAYER.upper(), ANY_PAYER),
                        plan=str(row.get("plan") or ANY_PAYER).strip(),
                        convention=convention or str(row.get("convention") or "national"))


def _points(value: Any, default: int) -> int:
    try:
        return max(0, min(100, int(value)))
    except (TypeError, ValueError):
        return default


def _conflicts(rules: Iterable[ModifierRule]) -> tuple[str, ...]:
    seen: dict[tuple[str, str, str | None], set[tuple[str, ...]]] = {}
    for rule in rules:
        for cpt in rule.cpts:
            seen.setdefault((rule.payer, cpt, rule.credential), set()).add(rule.modifiers)
    return tuple(sorted(f"{payer} {cpt}{' ' + cred if cred else ''}: "
                        + " vs ".join("|".join(m) for m in sorted(options))
                        for (payer, cpt, cred), options in seen.items() if len(options) > 1))


@cache
def default_rules() -> RulesTable:
    modifiers = tuple(_modifier_rule(r) for r in _rows("modifier_rules.csv"))
    return RulesTable(
        modifiers=modifiers,
        diagnoses=tuple(DiagnosisRule(_split(r["cpt"]), _split(r["diagnosis_prefixes"]),
                                      r["source"]) for r in _rows("diagnosis_rules.csv")),
        prior_auth=tuple(PriorAuthRule(r["payer"].strip(), _split(r["cpt"]), r["program"],
                                       r["source"]) for r in _rows("prior_auth.csv")),
        conflicts=_conflicts(modifiers))


def with_overrides(base: RulesTable, overrides: Mapping[str, Any] | None,
                   state: str | None = None) -> RulesTable:
    """A tenant's `risk_rules` ({"modifiers": [row…], "prior_auth": [row…],
    "disable_defaults": bool}) layered on `base`: a tenant modifier row replaces the default
    rows for the same payer and CPT; `disable_defaults` starts from an empty table. `state`
    is the practice's (its settings), which confirms the "varies" rows written for it."""
    practice_state = state.strip().upper() if state else None
    if not overrides:
        return replace(base, state=practice_state)
    start = RulesTable() if overrides.get("disable_defaults") else base
    own = tuple(_modifier_rule({**row, "source": row.get("source") or "practice rule"},
                               "practice")
                for row in overrides.get("modifiers") or [] if isinstance(row, Mapping))
    replaced = {(r.payer, cpt) for r in own for cpt in r.cpts}
    kept: list[ModifierRule] = []
    for rule in start.modifiers:
        plain = []
        for cpt in rule.cpts:
            if (rule.payer, cpt) in replaced:
                continue
            exempt = frozenset(p for p, c in replaced if c == cpt) if rule.payer == ANY_PAYER \
                else frozenset()
            if exempt:  # the practice's own row for that payer wins over the general one
                kept.append(replace(rule, cpts=(cpt,), except_payers=rule.except_payers | exempt))
            else:
                plain.append(cpt)
        if plain:
            kept.append(replace(rule, cpts=tuple(plain)))
    auths = tuple(PriorAuthRule(str(r.get("payer") or ANY_PAYER), _split(r.get("cpt")),
                                str(r.get("program") or "practice rule"),
                                str(r.get("source") or "practice rule"))
                  for r in overrides.get("prior_auth") or [] if isinstance(r, Mapping))
    modifiers = (*own, *kept)
    return RulesTable(modifiers=modifiers, diagnoses=start.diagnoses,
                      prior_auth=(*auths, *start.prior_auth), conflicts=_conflicts(modifiers),
                      state=practice_state)
