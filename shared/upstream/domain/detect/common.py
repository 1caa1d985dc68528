"""Windows, thresholds and evidence shared by the detectors.

Windows follow the seeds: the current window is the 7 days before the run day, the baseline the
13 weeks before that. A run on day D sees only cells decided before D.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from upstream.domain.aggregates import AggregateFrame
from upstream.domain.codes.catalogue import describe_carc
from upstream.domain.detect.findings import Window

CURRENT_DAYS = 7
BASELINE_WEEKS = 13
# Seeds: at least 10 decided lines in a period before a rate is judged at all.
MIN_LINES = 10
# Seeds' severity bands on the ratio current / baseline rate.
MEDIUM_RATIO, HIGH_RATIO = 1.25, 1.5
# False alerts we budget per payer-year for the weekly tests of one detector: a third of the
# product goal (≤ 0.3), so three weekly detectors together stay inside it under the null.
FALSE_ALERTS_PER_PAYER_YEAR = 0.1
RUNS_PER_YEAR = 52


@dataclass(frozen=True, slots=True)
class Windows:
    baseline_start: date
    current_start: date
    end: date  # exclusive: the run day

    @classmethod
    def weekly(cls, run_day: date, current_days: int = CURRENT_DAYS) -> Windows:
        current = run_day - timedelta(days=current_days)
        return cls(current - timedelta(weeks=BASELINE_WEEKS), current, run_day)

    def model(self) -> Window:
        return Window(baseline_start=self.baseline_start,
                      baseline_end=self.current_start - timedelta(days=1),
                      current_start=self.current_start, current_end=self.end - timedelta(days=1))

    def weeks(self) -> list[tuple[date, date]]:
        return [(self.baseline_start + timedelta(weeks=i),
                 self.baseline_start + timedelta(weeks=i + 1)) for i in range(BASELINE_WEEKS)]


def run_fdr_level(payers: int) -> float:
    """BH level for one weekly run: under the global null BH's chance of any rejection is at
    most q, so q = budget × payers / runs-per-year keeps false alerts per payer-year within
    the budget whatever the number of cells; floored so one-payer tenants can still alert at
    a meaningful level, capped at the conventional 0.05."""
    return min(0.05, max(0.002, FALSE_ALERTS_PER_PAYER_YEAR * payers / RUNS_PER_YEAR))


def severity_for_ratio(ratio: float) -> str | None:
    if ratio >= HIGH_RATIO:
        return "HIGH"
    if ratio >= MEDIUM_RATIO:
        return "MEDIUM"
    return None


def rate(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole > 0 else None


def dollars(cents: float) -> float:
    return round(cents / 100, 2)


def top_codes(frame: AggregateFrame, payer: str, windows: Windows, limit: int = 3,
              ) -> dict[str, list[dict[str, Any]]]:
    """Top CPT codes by denied lines (current vs baseline rate) and top CARC codes by denied
    dollars, each CARC with its meaning and corrective action."""
    series = frame.payers[payer]
    cpts: list[dict[str, Any]] = []
    for code in series.names("cpt"):
        cur_n = frame.window(payer, f"cpt.{code}.decided", windows.current_start, windows.end)
        cur_x = frame.window(payer, f"cpt.{code}.denied", windows.current_start, windows.end)
        base_n = frame.window(payer, f"cpt.{code}.decided", windows.baseline_start,
                              windows.current_start)
        base_x = frame.window(payer, f"cpt.{code}.denied", windows.baseline_start,
                              windows.current_start)
        if cur_x > 0:
            cpts.append({"cpt": code, "denied": int(cur_x), "decided": int(cur_n),
                         "rate": rate(cur_x, cur_n), "baseline_rate": rate(base_x, base_n)})
    carcs: list[dict[str, Any]] = []
    for code in series.names("carc"):
        cur_x = frame.window(payer, f"carc.{code}.denied", windows.current_start, windows.end)
        cents = frame.window(payer, f"carc.{code}.denied_cents", windows.current_start,
                             windows.end)
        if cur_x > 0:
            carcs.append({**describe_carc(code), "denied": int(cur_x),
                          "denied_dollars": dollars(cents)})
    cpts.sort(key=lambda c: (-c["denied"], c["cpt"]))
    carcs.sort(key=lambda c: (-c["denied_dollars"], c["code"]))
    return {"top_cpt": cpts[:limit], "top_carc": carcs[:limit]}


def finite(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else value
