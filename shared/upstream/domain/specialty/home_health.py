"""Home health timing (PDGM):

- Notice of Admission within 5 calendar days after the period's start (42 CFR 484.205(j)):
  a late NOA cuts the period's payment by 1/30 for each day from the start until the NOA,
  unless an exception applies.
- Face-to-face encounter within 90 days before or 30 days after the start of care
  (42 CFR 424.22(a)(1)(v)); outside that window the certification is invalid.

Episodes come as dicts with `start_of_care`, `period_start`, `noa_date`, `f2f_date`
(optional `payment_cents`, `patient_key`, `payer`); the claim exports we ingest do not carry
these dates yet, so the checks are the domain half, ready for an episodes feed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from upstream.domain.detect.findings import Finding, Severity
from upstream.domain.specialty.common import finding, number
from upstream.domain.values import as_day as day

NOA_DAYS = 5
F2F_BEFORE, F2F_AFTER = 90, 30
PERIOD_DAYS = 30


def noa_days_late(period_start: date, noa: date | None, today: date) -> int:
    """Days past the 5-day window (counting to today while none was filed)."""
    filed = noa or today
    return max(0, (filed - period_start).days - NOA_DAYS)


def noa_reduction_cents(period_start: date, noa: date, payment_cents: float) -> float:
    """1/30 of the period's payment per day from the period start to the late NOA."""
    if (noa - period_start).days <= NOA_DAYS:
        return 0.0
    return payment_cents * min(PERIOD_DAYS, (noa - period_start).days) / PERIOD_DAYS


def f2f_in_window(start_of_care: date, f2f: date | None) -> bool:
    return f2f is not None and -F2F_BEFORE <= (f2f - start_of_care).days <= F2F_AFTER


def check_episodes(episodes: Sequence[Mapping[str, Any]], run_day: date) -> list[Finding]:
    late, no_f2f = [], []
    for episode in episodes:
        start, soc = day(episode.get("period_start")), day(episode.get("start_of_care"))
        noa = day(episode.get("noa_date"))
        if start is not None and noa_days_late(start, noa, run_day) > 0:
            late.append({**episode, "days_late": noa_days_late(start, noa, run_day),
                         "reduction_cents": noa_reduction_cents(
                             start, noa or run_day, number(episode.get("payment_cents")))})
        if soc is not None and not f2f_in_window(soc, day(episode.get("f2f_date"))) \
                and (soc - run_day).days < F2F_AFTER:
            no_f2f.append(episode)
    found = []
    if late:
        found.append(finding(
            "home_health_noa_late", None, "home-health:noa", Severity.HIGH,
            f"{len(late)} home health periods with a late (or missing) Notice of Admission",
            "Each day past 5 costs 1/30 of the period's payment: "
            f"${sum(e['reduction_cents'] for e in late) / 100:,.2f} so far.",
            "home_health_rules", run_day, run_day,
            {"periods": len(late), "reduction_dollars": round(
                sum(e["reduction_cents"] for e in late) / 100, 2)},
            {"periods": [{k: str(e.get(k)) for k in ("patient_key", "payer", "period_start",
                                                       "noa_date", "days_late")}
                         for e in late[:25]]},
            ["File the NOA today; document any exception (42 CFR 484.205(j)(4))."]))
    if no_f2f:
        found.append(finding(
            "home_health_f2f_window", None, "home-health:f2f", Severity.HIGH,
            f"{len(no_f2f)} starts of care without a face-to-face encounter in the window",
            "The encounter must fall 90 days before to 30 days after the start of care, or "
            "the certification fails.", "home_health_rules", run_day, run_day,
            {"episodes": len(no_f2f)},
            {"episodes": [{k: str(e.get(k)) for k in ("patient_key", "start_of_care",
                                                        "f2f_date")} for e in no_f2f[:25]]},
            ["Schedule or document the encounter before the 30-day mark."]))
    return found
