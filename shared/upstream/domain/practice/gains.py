"""What Upstream gained the practice, for the top of the home page (issue 13): dollars at
stake in what it flagged, dollars recovered after an alert, authorizations renewed before
they lapsed. Each figure is counted so a skeptic can check it line by line:

- flagged: the "at stake" dollars of every alert raised (open, being worked or resolved;
  alerts marked noise are left out: the practice said they were not worth it);
- recovered: claim lines that were denied when an alert listed them (its affected lines)
  and are paid now, with a decision dated after the alert was first raised, so a payment
  that came before the alert never counts;
- renewed in time: authorizations marked renewed on or before their end date.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from upstream.domain.notify.words import at_stake
from upstream.domain.records import claim_line_doc_id

# Per alert, at most the affected lines it lists (findings.AFFECTED_LINES).
COUNTED_STATUSES = frozenset({"open", "acknowledged", "resolved"})


@dataclass(frozen=True, slots=True)
class Gains:
    flagged_dollars: float
    flagged_alerts: int
    recovered_cents: int
    recovered_lines: int
    renewed_in_time: int


def line_doc_ids(alerts: Iterable[Mapping[str, Any]]) -> dict[str, tuple[str, str]]:
    """Doc id → (alert id, first seen day) for every denied line the counted alerts list."""
    found: dict[str, tuple[str, str]] = {}
    for alert in alerts:
        if str(alert.get("status") or "open") not in COUNTED_STATUSES:
            continue
        for line in (alert.get("evidence") or {}).get("affected_lines") or []:
            if not isinstance(line, Mapping) or line.get("outcome") != "DENIED" \
                    or not line.get("claim_id"):
                continue
            key = str(line.get("line_key") or f"L{line.get('line') or 1}")
            found.setdefault(claim_line_doc_id(str(line["claim_id"]), key),
                             (str(alert.get("alert_id")), str(alert.get("first_seen") or "")))
    return found


def as_day(value: Any) -> date | None:
    """A stored date, datetime or ISO text as a day; None for anything else."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def gains(alerts: Sequence[Mapping[str, Any]], now_lines: Mapping[str, Mapping[str, Any]],
          authorizations: Iterable[Mapping[str, Any]]) -> Gains:
    counted = [a for a in alerts if str(a.get("status") or "open") in COUNTED_STATUSES]
    stakes = [at_stake(a) for a in counted]
    recovered_cents = recovered_lines = 0
    for doc_id, (_, first_seen) in line_doc_ids(counted).items():
        line = now_lines.get(doc_id)
        raised, decided = as_day(first_seen), as_day((line or {}).get("decided_date"))
        if line and line.get("outcome") == "PAID" and raised and decided and decided > raised:
            recovered_cents += int(line.get("paid_cents") or 0)
            recovered_lines += 1
    renewed = 0
    for auth in authorizations:
        marked, ends = as_day(auth.get("status_set_at")), as_day(auth.get("end_date"))
        if auth.get("status") == "RENEWED" and marked and ends and marked <= ends:
            renewed += 1
    return Gains(flagged_dollars=sum(s for s in stakes if s), flagged_alerts=len(
        [s for s in stakes if s]), recovered_cents=recovered_cents,
        recovered_lines=recovered_lines, renewed_in_time=renewed)
