"""Payer names → one canonical name.

Order of trust: the tenant's own aliases (exact), the built-in alias table (exact, on a key
that ignores case, spacing, punctuation and corporate suffixes), then a fuzzy match for
typos only. The fuzzy step uses plain normalized Levenshtein similarity (`fuzz.ratio`),
not token-set or partial ratios: those score "BCBS of Texas" against "BCBS" at 100 and would
merge distinct payers. A match must also clear a confidence floor and beat the runner-up of
a different payer by a margin; otherwise the payer stays itself, cleaned. Merging two payers
corrupts every statistic downstream, while an unmerged spelling only splits one payer's
sample, which a tenant alias fixes — so the rules lean hard towards not merging.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

from rapidfuzz import fuzz, process

# 90 on fuzz.ratio allows one edit in ten characters ("unitedhealtcare"); below it,
# distinct short names start to collide ("aetna"/"etna health" style near-misses).
FUZZY_FLOOR = 90.0
# The best candidate must beat the best candidate of another payer by this much.
AMBIGUITY_MARGIN = 3.0
# Below six characters a single edit is >15% of the name: exact matches only.
FUZZY_MIN_LENGTH = 6
# Typos change a character or two; a longer difference is a missing or extra word
# ("Blue Cross Blue Shield of Ohio" vs "Blue Cross Blue Shield"), i.e. another payer.
FUZZY_MAX_LENGTH_DIFFERENCE = 2

_SUFFIXES = {"inc", "llc", "co", "corp", "corporation", "company", "ins", "insurance", "the",
             "plan", "plans", "of", "and"}


def lookup_key(name: str) -> str:
    """Case, spacing, punctuation and corporate suffixes removed: `United Health-Care, Inc.`
    and `UNITEDHEALTHCARE` share the key `unitedhealthcare`."""
    tokens = re.findall(r"[a-z0-9]+", name.lower().replace("&", " and "))
    kept = [t for t in tokens if t not in _SUFFIXES] or tokens
    return "".join(kept)


def display_name(raw: str) -> str:
    """An unknown payer keeps its own spelling, with whitespace tidied."""
    return " ".join(raw.split())


@dataclass(frozen=True, slots=True)
class PayerMatch:
    canonical: str
    method: str  # tenant | alias | fuzzy | unknown
    score: float


@cache
def builtin_aliases() -> dict[str, str]:
    """lookup key → canonical name, from the shipped table (data/payer_aliases.csv)."""
    table: dict[str, str] = {}
    with resources.files("upstream.domain").joinpath("data/payer_aliases.csv").open(
        encoding="utf-8"
    ) as handle:
        for row in csv.DictReader(handle):
            table[lookup_key(row["alias"])] = row["canonical"]
            table[lookup_key(row["canonical"])] = row["canonical"]
    return table


class PayerNormalizer:
    """Maps raw payer names to canonical ones for one tenant; cached per raw spelling."""

    def __init__(self, tenant_aliases: Mapping[str, str] | None = None,
                 builtin: Mapping[str, str] | None = None) -> None:
        self._tenant = {lookup_key(k): v for k, v in (tenant_aliases or {}).items()}
        self._builtin = dict(builtin if builtin is not None else builtin_aliases())
        self._keys = list(self._builtin)
        self.match = lru_cache(maxsize=65536)(self._match)

    def canonical(self, raw: str) -> str:
        return self.match(raw).canonical

    def _match(self, raw: str) -> PayerMatch:
        key = lookup_key(raw)
        if key in self._tenant:
            return PayerMatch(self._tenant[key], "tenant", 100.0)
        if key in self._builtin:
            return PayerMatch(self._builtin[key], "alias", 100.0)
        if len(key) >= FUZZY_MIN_LENGTH and (fuzzy := self._fuzzy(key)) is not None:
            return fuzzy
        return PayerMatch(display_name(raw), "unknown", 0.0)

    def _fuzzy(self, key: str) -> PayerMatch | None:
        candidates = process.extract(key, self._keys, scorer=fuzz.ratio, limit=8,
                                     score_cutoff=FUZZY_FLOOR - AMBIGUITY_MARGIN)
        if not candidates or candidates[0][1] < FUZZY_FLOOR:
            return None
        best_key, best_score, _ = candidates[0]
        best = self._builtin[best_key]
        if abs(len(best_key) - len(key)) > FUZZY_MAX_LENGTH_DIFFERENCE:
            return None
        # Digits name products and regions ("Plan 2", "District 9"): never fuzz them away.
        if re.sub(r"\D", "", key) != re.sub(r"\D", "", best_key):
            return None
        for other_key, other_score, _ in candidates[1:]:
            if self._builtin[other_key] != best and best_score - other_score < AMBIGUITY_MARGIN:
                return None
        return PayerMatch(best, "fuzzy", float(best_score))
