"""Aggregates recomputed from the stored claim lines, and what differs (Contract 7).

The aggregator keeps cells exactly once per change it receives; a change it never receives
(dead-lettered, or lost by a crash before an ack) leaves a cell wrong for good, and every
detector after that runs on wrong numbers. The stored lines are the truth: a cell is the sum
of `line_contribution` over the lines that land in it, and each line's ledger entry is its
own version and contribution. Recomputing both and writing only what differs repairs the
store, and moves nothing when nothing is wrong.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from upstream.domain.aggregates import DECIDED_OUTCOMES, PAID_OUTCOMES, cell_meta, line_contribution

# Counters are sums of integer cents and counts; anything below this is float noise from
# Increment arithmetic, not a lost change.
TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True)
class ExpectedCell:
    payer: str
    day: str
    counters: dict[str, float]


@dataclass(frozen=True, slots=True)
class CellDiff:
    key: str
    payer: str
    day: str
    expected: dict[str, float]
    stored: dict[str, float]

    def changed_fields(self) -> dict[str, tuple[float, float]]:
        """field → (stored, expected) for the fields that differ."""
        return {name: (self.stored.get(name, 0.0), self.expected.get(name, 0.0))
                for name in sorted(self.expected.keys() | self.stored.keys())
                if abs(self.stored.get(name, 0.0) - self.expected.get(name, 0.0)) > TOLERANCE}


@dataclass(frozen=True, slots=True)
class Expected:
    cells: dict[str, ExpectedCell]
    ledger: dict[str, dict[str, Any]]  # claim-line doc id → the aggregator's ledger entry


def expected_state(lines: Iterable[tuple[str, Mapping[str, Any]]]) -> Expected:
    """(doc id, stored claim-line document) → the cells and ledger the aggregator would hold
    had it received every change."""
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    meta: dict[str, dict[str, str]] = {}
    ledger: dict[str, dict[str, Any]] = {}
    for doc_id, doc in lines:
        contribution = line_contribution(doc)
        for key, fields in contribution.items():
            meta[key] = cell_meta(doc)
            for name, amount in fields.items():
                totals[key][name] += amount
        ledger[doc_id] = {"updated_at": _stamp(doc.get("updated_at")),
                          "content_hash": str(doc.get("content_hash", "")),
                          "contribution": contribution}
    cells = {key: ExpectedCell(meta[key]["payer"], meta[key]["day"],
                               {k: v for k, v in fields.items() if v})
             for key, fields in totals.items()}
    return Expected(cells, ledger)


def _stamp(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def diff_cells(expected: Mapping[str, ExpectedCell],
               stored: Mapping[str, tuple[str, str, Mapping[str, float]]]) -> list[CellDiff]:
    """Cells whose stored counters differ from the recompute, missing ones and extra ones
    (a stored cell no line lands in must be emptied). `stored`: key → (payer, day, flat)."""
    diffs = []
    for key in sorted(expected.keys() | stored.keys()):
        want = expected.get(key)
        payer, day, have = stored.get(key) or (want.payer, want.day, {})  # type: ignore[union-attr]
        wanted = want.counters if want else {}
        nonzero = {k: float(v) for k, v in have.items() if abs(v) > TOLERANCE}
        diff = CellDiff(key, payer, day, dict(wanted), nonzero)
        if diff.changed_fields():
            diffs.append(diff)
    return diffs


def ledger_differs(entry: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    if entry is None:
        return True
    return bool(entry.get("content_hash") != wanted["content_hash"]
                or entry.get("contribution") != wanted["contribution"])


@dataclass(frozen=True, slots=True)
class Totals:
    """Tenant-wide sums, from the lines and from the cells: four numbers each, computed by
    aggregation queries without reading a document."""

    decided: float
    denied: float
    denied_cents: float
    paid_cents: float

    def differs(self, other: Totals) -> bool:
        return any(abs(a - b) > TOLERANCE for a, b in zip(
            (self.decided, self.denied, self.denied_cents, self.paid_cents),
            (other.decided, other.denied, other.denied_cents, other.paid_cents), strict=True))

    def as_dict(self) -> dict[str, float]:
        return {"decided": self.decided, "denied": self.denied,
                "denied_cents": self.denied_cents, "paid_cents": self.paid_cents}


DECIDED = sorted(DECIDED_OUTCOMES)
PAID = sorted(PAID_OUTCOMES)
