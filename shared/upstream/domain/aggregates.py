"""Per-payer daily aggregates: what each claim line contributes, and the arrays detectors read.

Why aggregates: detectors must not scan every claim every run (DESIGN "Firestore"). Each line
contributes counters to one (payer, day) cell, the day its outcome became known
(`decided_date`): that is also what makes a backtest honest, since a run on day D sums only
cells before D and so sees a line's outcome only from its decision on.

A contribution is a flat `{"field": number}` map (nested scopes dotted: `cpt.97153.denied`).
Moving a line (PENDING → DENIED → PAID after appeal) is "subtract the old contribution, add the
new one"; the aggregator stores each line's last contribution to make that exact.

Price is kept per code the same way: `cpt.<code>.paid_units` and `cpt.<code>.allowed_cents` for
the mean, and a histogram of the unit price on a 1 % log scale (`ppu.<code>.<bin>`, bin =
round(100 · ln cents per unit)) for tests on its distribution: a fee-schedule cut moves the
whole distribution, which a rank or Kolmogorov-Smirnov test sees and a mean of mixed plans hides.
The unit price is the allowed amount where the remittance gives it (the payer's price before
the patient's share, which varies with deductibles), else the paid amount.

Lag is kept as a histogram of whole days (`lag.<days>`), capped at `LAG_CAP_DAYS`: medians
and rank tests need the distribution, not a list of every claim. A second histogram counts
business days (`blag.<days>`, weekends and US federal holidays left out): payers adjudicate on
business days, so that is the lag DelayGuard tests; calendar days are what staff are shown.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from upstream.domain.calendar import business_days_between
from upstream.domain.codes import cdt

DECIDED_OUTCOMES = frozenset({"PAID", "PARTIAL", "DENIED"})
PAID_OUTCOMES = frozenset({"PAID", "PARTIAL"})
# Lags beyond four months are collections problems, not payer behaviour; they share a bin.
LAG_CAP_DAYS = 120

Contribution = dict[str, dict[str, float]]  # aggregate key → flat field → amount
LineChange = tuple[str, datetime, str, dict[str, Any]]  # doc id, updated_at, content hash, doc


def payer_digest(payer: str) -> str:
    """A payer's id where its name cannot go (document ids, URL segments: names hold '/')."""
    return hashlib.sha256(payer.encode()).hexdigest()[:16]


def aggregate_key(payer: str, day: date | str) -> str:
    """Document id of one (payer, day) cell: hashed payer, readable day."""
    return f"{payer_digest(payer)}_{day}"


def _field_name(code: str) -> str:
    return code.replace(".", "_").replace("`", "") or "_"


def _decided_day(doc: Mapping[str, Any]) -> Any:
    """The day the outcome became known; older exports without a decision date fall back to
    submission, then service."""
    return doc.get("decided_date") or doc.get("submitted_date") or doc.get("service_date")


def line_contribution(doc: Mapping[str, Any]) -> Contribution:
    """What one stored claim-line document adds to the aggregates (empty while undecided)."""
    outcome = doc.get("outcome")
    day = _decided_day(doc)
    if outcome not in DECIDED_OUTCOMES or not day or not doc.get("payer"):
        return {}
    billed = int(doc.get("billed_cents") or 0)
    denied = outcome == "DENIED"
    cpt = _field_name(str(doc.get("cpt") or "unknown"))
    fields: dict[str, float] = {
        "decided": 1, "billed_cents": billed, f"cpt.{cpt}.decided": 1,
        f"cpt.{cpt}.billed_cents": billed,
    }
    dental = cdt.family(cpt)
    if dental:  # dental codes also count towards their family (`codes/cdt.py`)
        fields[f"family.{dental}.decided"] = 1
    if denied:
        fields.update({"denied": 1, "denied_cents": billed, f"cpt.{cpt}.denied": 1,
                       f"cpt.{cpt}.denied_cents": billed})
        if dental:
            fields[f"family.{dental}.denied"] = 1
            fields[f"family.{dental}.denied_cents"] = billed
        for carc in dict.fromkeys(doc.get("carc_codes") or ["none"]):
            name = _field_name(str(carc))
            fields[f"carc.{name}.denied"] = 1
            fields[f"carc.{name}.denied_cents"] = billed
    elif outcome in PAID_OUTCOMES:
        fields["paid"] = 1
        fields["paid_cents"] = int(doc.get("paid_cents") or 0)
        fields.update(_price_fields(cpt, doc))
        submitted = doc.get("submitted_date")
        if submitted and doc.get("decided_date"):
            lag = (date.fromisoformat(str(doc["decided_date"]))
                   - date.fromisoformat(str(submitted))).days
            fields[f"lag.{min(max(lag, 0), LAG_CAP_DAYS)}"] = 1
            working = business_days_between(date.fromisoformat(str(submitted)),
                                            date.fromisoformat(str(doc["decided_date"])))
            fields[f"blag.{min(working, LAG_CAP_DAYS)}"] = 1
    return {aggregate_key(str(doc["payer"]), str(day)): fields}


def price_bin(cents_per_unit: float) -> int:
    """The 1 % log-scale bin of a unit price in cents (bins are comparable across codes)."""
    return round(100 * math.log(cents_per_unit))


def bin_price(price_bin_index: int) -> float:
    """The bin's unit price in cents (within 0.5 % of every price it holds)."""
    return math.exp(price_bin_index / 100)


def _price_fields(cpt: str, doc: Mapping[str, Any]) -> dict[str, float]:
    units = doc.get("units")
    units = 1 if units is None else units
    allowed = doc.get("allowed_cents")
    cents = int(allowed if allowed is not None else doc.get("paid_cents") or 0)
    if not isinstance(units, int | float) or units <= 0 or cents < units:
        return {}  # nothing priced: a zero-pay line is a denial in all but name
    return {f"cpt.{cpt}.paid": 1, f"cpt.{cpt}.paid_units": units,
            f"cpt.{cpt}.allowed_cents": cents, f"ppu.{cpt}.{price_bin(cents / units)}": 1}


def contribution_delta(old: Contribution, new: Contribution) -> Contribution:
    """new − old per aggregate key, zero entries dropped (a no-op change moves nothing)."""
    delta: dict[str, dict[str, float]] = {}
    for key in old.keys() | new.keys():
        before, after = old.get(key, {}), new.get(key, {})
        moved = {name: after.get(name, 0) - before.get(name, 0)
                 for name in before.keys() | after.keys()}
        moved = {name: amount for name, amount in moved.items() if amount}
        if moved:
            delta[key] = moved
    return delta


def cell_meta(doc: Mapping[str, Any]) -> dict[str, str]:
    """The identifying fields stored beside the counters of the line's aggregate cell."""
    return {"payer": str(doc.get("payer")), "day": str(_decided_day(doc))}


def flatten(document: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """A stored aggregate document (nested maps) → flat counters; non-numbers skipped."""
    flat: dict[str, float] = {}
    for name, value in document.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{name}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[f"{prefix}{name}"] = value
    return flat


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Flat dotted counters → nested maps (how Firestore stores them)."""
    nested: dict[str, Any] = {}
    for name, value in flat.items():
        target = nested
        *parents, leaf = name.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return nested


@dataclass(frozen=True, slots=True)
class DailyCell:
    """One (payer, day) aggregate as detectors see it."""

    payer: str
    day: date
    counters: Mapping[str, float]


@dataclass(slots=True)
class PayerSeries:
    """One payer's counters as daily arrays over the frame's calendar."""

    payer: str
    counters: dict[str, npt.NDArray[np.float64]] = field(default_factory=dict)
    price_index: dict[str, list[tuple[int, npt.NDArray[np.float64]]]] = field(
        default_factory=dict)

    def get(self, name: str, length: int) -> npt.NDArray[np.float64]:
        found = self.counters.get(name)
        return found if found is not None else np.zeros(length)

    def price_series(self, cpt: str) -> list[tuple[int, npt.NDArray[np.float64]]]:
        """(price bin, daily counts) of one code; indexed once, as detectors ask per run."""
        if not self.price_index:
            self.price_index[""] = []  # indexed, even when nothing is priced
            for name, series in self.counters.items():
                if name.startswith("ppu."):
                    _, code, price_bin = name.split(".", 2)
                    self.price_index.setdefault(code, []).append((int(price_bin), series))
        return self.price_index.get(cpt, [])

    def names(self, scope: str) -> list[str]:
        """The codes seen in a scope (`cpt`, `carc`)."""
        return sorted({name.split(".")[1] for name in self.counters
                       if name.startswith(scope + ".")})


@dataclass(slots=True)
class AggregateFrame:
    """Every payer's daily counters from `start` for `days` days; day i is start + i."""

    start: date
    days: int
    payers: dict[str, PayerSeries]

    def index(self, day: date) -> int:
        return (day - self.start).days

    def day(self, index: int) -> date:
        return self.start + timedelta(days=index)

    def window(self, payer: str, name: str, first: date, end: date) -> float:
        """Sum of a counter over [first, end)."""
        series = self.payers[payer].get(name, self.days)
        lo, hi = max(0, self.index(first)), max(0, min(self.days, self.index(end)))
        return float(series[lo:hi].sum()) if hi > lo else 0.0

    def lag_histogram(self, payer: str, first: date, end: date,
                      business: bool = False) -> npt.NDArray[np.float64]:
        """Counts of paid lines by whole days of lag (index = days) decided in [first, end);
        in business days with `business` (empty where aggregates predate that histogram)."""
        prefix = "blag" if business else "lag"
        lo, hi = max(0, self.index(first)), max(0, min(self.days, self.index(end)))
        histogram = np.zeros(LAG_CAP_DAYS + 1)
        if hi <= lo:
            return histogram
        for lag in range(LAG_CAP_DAYS + 1):
            series = self.payers[payer].counters.get(f"{prefix}.{lag}")
            if series is not None:
                histogram[lag] = series[lo:hi].sum()
        return histogram

    def price_histogram(self, payer: str, cpt: str, first: date,
                        end: date) -> dict[int, float]:
        """Priced lines of one code by unit-price bin (`price_bin`), decided in [first, end)."""
        lo, hi = max(0, self.index(first)), max(0, min(self.days, self.index(end)))
        histogram: dict[int, float] = {}
        if hi <= lo:
            return histogram
        for price_bin, series in self.payers[payer].price_series(cpt):
            count = float(series[lo:hi].sum())
            if count:
                histogram[price_bin] = count
        return histogram


def build_frame(cells: Iterable[DailyCell], start: date | None = None,
                end: date | None = None) -> AggregateFrame:
    """Cells (from Firestore, or summed from records offline) → arrays. Cells outside
    [start, end) are left out; days with no cell are zeros (a holiday week is a week of 0s)."""
    cells = [c for c in cells if (start is None or c.day >= start) and (end is None or c.day < end)]
    if not cells:
        first = start or date(1970, 1, 1)
        return AggregateFrame(first, max(0, (end - first).days) if end else 0, {})
    first = start or min(c.day for c in cells)
    last = end or (max(c.day for c in cells) + timedelta(days=1))
    days = (last - first).days
    payers: dict[str, PayerSeries] = {}
    for cell in cells:
        series = payers.setdefault(cell.payer, PayerSeries(cell.payer))
        index = (cell.day - first).days
        for name, amount in cell.counters.items():
            array = series.counters.get(name)
            if array is None:
                array = series.counters[name] = np.zeros(days)
            array[index] += amount
    return AggregateFrame(first, days, payers)


def cells_from_documents(documents: Iterable[Mapping[str, Any]]) -> list[DailyCell]:
    """Claim-line documents → summed daily cells: the offline path to the same aggregates."""
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    meta: dict[str, tuple[str, date]] = {}
    for doc in documents:
        for key, fields in line_contribution(doc).items():
            info = cell_meta(doc)
            meta[key] = (info["payer"], date.fromisoformat(info["day"]))
            for name, amount in fields.items():
                totals[key][name] += amount
    return [DailyCell(meta[key][0], meta[key][1], dict(fields)) for key, fields in totals.items()]


def cell_from_document(document: Mapping[str, Any]) -> DailyCell:
    """A stored aggregate document → a cell. Raises `ValueError` for a corrupt document, so a
    tenant's run fails loudly instead of silently detecting on wrong numbers."""
    try:
        payer, day = str(document["payer"]), date.fromisoformat(str(document["day"]))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"aggregate document without payer/day: {exc}") from exc
    counters = flatten({k: v for k, v in document.items() if k not in ("payer", "day")})
    if any(value < 0 for value in counters.values()):
        raise ValueError(f"aggregate for {day} has negative counters")
    return DailyCell(payer, day, counters)


def line_changes(records: Iterable[tuple[str, str, Mapping[str, Any]]]) -> list[LineChange]:
    """(doc id, content hash, stored document) → changes ordered by (`updated_at`, hash):
    the version order that decides which of two deliveries of a line is newer."""
    changes = []
    for doc_id, content_hash, document in records:
        stamp = datetime.fromisoformat(str(document["updated_at"]).replace("Z", "+00:00"))
        changes.append((doc_id, stamp, content_hash, dict(document)))
    return changes
