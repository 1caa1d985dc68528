"""The payer report: fingerprint, archetype and the evidence a billing manager can read.

One shape for `upstream payers`, `GET /v1/payers` and the dashboard's payer pages (DESIGN
Contract 5): `{"payer", "archetype", "fingerprint": {...}, "evidence": {...}}`.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from upstream.domain.aggregates import AggregateFrame, payer_digest
from upstream.domain.codes.catalogue import describe_carc
from upstream.domain.payer_behavior.archetypes import Assignment, assign
from upstream.domain.payer_behavior.fingerprint import Fingerprint, Periods, fingerprints

TOP_REASONS = 3


def payer_report(frame: AggregateFrame, as_of: date) -> list[dict[str, Any]]:
    prints = fingerprints(frame, as_of)
    by_payer = {a.payer: a for a in assign(prints)}
    periods = Periods.as_of(as_of)
    return [_entry(frame, fp, by_payer[fp.payer], periods) for fp in prints]


def _entry(frame: AggregateFrame, fp: Fingerprint, assignment: Assignment,
           periods: Periods) -> dict[str, Any]:
    return {"payer": fp.payer, "payer_id": payer_digest(fp.payer),
            "archetype": assignment.archetype,
            "fingerprint": fp.to_dict(),
            "evidence": {"because": because(fp), "stability": assignment.stability,
                         "cluster": assignment.cluster, "note": assignment.note,
                         "z": assignment.z, "cluster_scores": assignment.scores,
                         "top_denial_reasons": _top_reasons(frame, fp.payer, periods),
                         "periods": {"prior": [periods.prior_start.isoformat(),
                                               periods.recent_start.isoformat()],
                                     "recent": [periods.recent_start.isoformat(),
                                                periods.end.isoformat()]}}}


def because(fp: Fingerprint) -> list[str]:
    """The fingerprint in sentences: what changed, in the units staff use."""
    said = []
    if fp.denial_rate is not None and fp.denial_rate_prior is not None:
        said.append(f"Denies {fp.denial_rate:.1%} of lines this quarter vs "
                    f"{fp.denial_rate_prior:.1%} before"
                    + (" (a significant rise)" if (fp.denial_trend_p_value or 1) < 0.01
                       else "") + ".")
    if fp.days_to_payment is not None and fp.days_to_payment_prior is not None:
        said.append(f"Pays in {fp.days_to_payment:.0f} days (median) vs "
                    f"{fp.days_to_payment_prior:.0f} before"
                    + (" (the whole distribution moved later)"
                       if (fp.payment_trend_ks_p_value or 1) < 0.01 else "") + ".")
    if fp.price_index is not None:
        said.append(f"Allows {fp.price_index:.0%} of what the practice's payers allow on "
                    "average for the same codes"
                    + (f", {fp.price_trend:+.1%} against before" if fp.price_trend is not None
                       else "") + ".")
    if fp.carc_mix_shift is not None and fp.carc_mix_shift >= 0.3:
        said.append(f"Denies for different reasons than before (mix shift "
                    f"{fp.carc_mix_shift:.2f} of 1).")
    return said


def _top_reasons(frame: AggregateFrame, payer: str, periods: Periods) -> list[dict[str, Any]]:
    counts = {code: frame.window(payer, f"carc.{code}.denied", periods.recent_start,
                                 periods.end)
              for code in frame.payers[payer].names("carc")}
    top = sorted((c for c in counts if counts[c]), key=lambda c: (-counts[c], c))[:TOP_REASONS]
    return [{**describe_carc(code), "denied": int(counts[code])} for code in top]
