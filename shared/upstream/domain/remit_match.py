"""Which stored claim line an 835 service line is about, and what changes on it.

An 835 names the claim by the provider's own claim id (CLP01, the patient control number we
sent) but not the line number: a service is identified by its procedure code, modifiers and
date of service, and by REF*6R (line item control number) when the billing system sent one.
Matching, most specific first, each stored line used once:

1. REF*6R equals the stored line number (`L<n>`) and the code agrees;
2. same code, same date of service and same modifiers;
3. same code and same date; 4. same code.

A claim without service lines (institutional claims are often paid at claim level) applies its
claim-level decision to every stored line of the claim; its paid amount goes on the line only
when the claim has exactly one line (splitting money we were not told how to split would invent
figures).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from upstream.domain.ingest import Rejected
from upstream.domain.records import Outcome
from upstream.domain.remittance import (
    Adjustment,
    RemitClaim,
    RemitService,
    Remittance,
    service_outcome,
)


@dataclass(frozen=True, slots=True)
class LineUpdate:
    doc_id: str
    fields: dict[str, Any]


@dataclass(slots=True)
class ClaimMatch:
    updates: list[LineUpdate]
    unmatched: list[RemitService]
    stale: int = 0


def _codes(adjustments: Sequence[Adjustment]) -> list[str]:
    return list(dict.fromkeys(a.code for a in adjustments))


def _fields(claim: RemitClaim, outcome: Outcome, paid: int | None, allowed: int | None,
            adjustments: Sequence[Adjustment], rarcs: Sequence[str]) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "outcome": outcome.value,
        "carc_codes": _codes(adjustments),
        "rarc_codes": list(dict.fromkeys(rarcs)),
        "decided_date": claim.decided_date.isoformat() if claim.decided_date else None,
    }
    if paid is not None:
        fields["paid_cents"] = paid
    if allowed is not None:
        fields["allowed_cents"] = allowed
    if claim.reversal:
        # A reversal takes back an earlier payment: the line is open again until the
        # corrected claim (usually later in the same file) decides it.
        fields.update(outcome=Outcome.PENDING.value, paid_cents=0, decided_date=None)
    return fields


def _stale(stored: dict[str, Any], decided: date | None) -> bool:
    """An older remittance (uploaded late) never overwrites a newer decision."""
    before = stored.get("decided_date")
    return bool(decided and before and stored.get("outcome") != Outcome.PENDING.value
                and str(before) > decided.isoformat())


def _rules(service: RemitService) -> list[Callable[[dict[str, Any]], bool]]:
    day = service.service_date.isoformat() if service.service_date else None
    mods = list(service.modifiers)

    def same_code(line: dict[str, Any]) -> bool:
        return bool(line.get("cpt") == service.cpt)

    def by_ref(line: dict[str, Any]) -> bool:
        return (service.line_ref is not None and same_code(line)
                and line.get("line_key") == f"L{service.line_ref.lstrip('0')}")

    def by_day_mods(line: dict[str, Any]) -> bool:
        return same_code(line) and day is not None and line.get("service_date") == day \
            and list(line.get("modifiers") or []) == mods

    def by_day(line: dict[str, Any]) -> bool:
        return same_code(line) and day is not None and line.get("service_date") == day

    return [by_ref, by_day_mods, by_day, same_code]


def match_claim(claim: RemitClaim, stored: Sequence[tuple[str, dict[str, Any]]]) -> ClaimMatch:
    """`stored`: (doc id, document) of every stored line with the claim's id."""
    result = ClaimMatch(updates=[], unmatched=[])
    if not claim.services:
        outcome = service_outcome(claim, claim.paid_cents, claim.adjustments)
        paid = claim.paid_cents if len(stored) == 1 else None
        for doc_id, line in stored:
            if _stale(line, claim.decided_date):
                result.stale += 1
                continue
            result.updates.append(LineUpdate(doc_id, _fields(
                claim, outcome, paid, None, claim.adjustments, claim.rarc_codes)))
        return result
    free = dict(stored)
    for service in claim.services:
        found = next((doc_id for rule in _rules(service)
                      for doc_id, line in free.items() if rule(line)), None)
        if found is None:
            result.unmatched.append(service)
            continue
        line = free.pop(found)
        if _stale(line, claim.decided_date):
            result.stale += 1
            continue
        # The line's decision is its own adjustments'; claim-level codes are listed with it.
        outcome = service_outcome(claim, service.paid_cents, service.adjustments)
        result.updates.append(LineUpdate(found, _fields(
            claim, outcome, service.paid_cents, service.allowed_cents,
            service.adjustments + claim.adjustments, service.rarc_codes + claim.rarc_codes)))
    return result


@dataclass(slots=True)
class Posting:
    """What one 835 does to the stored lines: the final fields per line (a later CLP of the
    same claim in the file, e.g. the correction after a reversal, wins), and what could not
    be posted."""

    changes: dict[str, dict[str, Any]]
    rejected: list[Rejected]
    stale: int = 0

    def reasons(self) -> dict[str, int]:
        counted = Counter(r.reason for r in self.rejected)
        return dict(sorted(counted.items()))


def plan_posting(remittance: Remittance,
                 stored: dict[str, list[tuple[str, dict[str, Any]]]]) -> Posting:
    """`stored`: claim id → its stored lines. Pure: the caller reads and writes."""
    posting = Posting(changes={}, rejected=[
        Rejected(line=p.segment, reason="unusable_claim", detail=p.reason, cells=["", ""])
        for p in remittance.problems if p.level == "claim"])
    for claim in remittance.claims:
        lines = stored.get(claim.claim_id, [])
        if not lines:
            posting.rejected.append(Rejected(
                line=claim.segment, reason="claim_not_found",
                detail="no stored line has this claim id: upload the claims, then this 835",
                cells=[claim.claim_id, ""]))
            continue
        current = [(doc_id, {**line, **posting.changes.get(doc_id, {})})
                   for doc_id, line in lines]
        match = match_claim(claim, current)
        posting.stale += match.stale
        for update in match.updates:
            posting.changes[update.doc_id] = {**posting.changes.get(update.doc_id, {}),
                                              **update.fields}
        for service in match.unmatched:
            posting.rejected.append(Rejected(
                line=claim.segment, reason="line_not_found",
                detail="no stored line of this claim has this procedure code",
                cells=[claim.claim_id, "-".join((service.cpt, *service.modifiers))]))
    return posting
