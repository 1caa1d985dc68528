"""`high_risk_claim` alerts (Contract 4): one per claim whose worst line scores HIGH, with
each line's reasons and the fixes, so the biller can act before the claim goes out.

The id is stable per claim (the claim's first date of service stands for the day the
episode opened), so a rescore after a correction updates the same alert, and a person's
acknowledge or noise on it stays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from upstream.domain.detect.findings import Alert, Finding, Severity, Window, alert_id
from upstream.domain.risk.score import LineScore
from upstream.domain.values import as_day

TYPE = "high_risk_claim"




def high_risk_alert(customer_id: str, lines: Sequence[Mapping[str, Any]],
                    scores: Sequence[LineScore], today: date) -> Alert | None:
    """The alert for one claim's scored lines (same order), or None unless one is HIGH."""
    worst = max(scores, key=lambda s: s.score)
    if worst.category != "HIGH":
        return None
    first = lines[0]
    claim_id, payer = str(first.get("claim_id")), str(first.get("payer") or "")
    days = [d for d in (as_day(line.get("service_date")) for line in lines) if d] or [today]
    reasons = sorted({f.name for s in scores if s.category == "HIGH" for f in s.factors
                      if f.points > 0})
    finding = Finding(
        type=TYPE, payer=payer or None, scope=f"claim:{claim_id}", severity=Severity.HIGH,
        title=f"Claim {claim_id} to {payer}: denial risk {worst.score}/100 — hold and fix",
        summary=(f"{sum(s.category == 'HIGH' for s in scores)} of {len(scores)} lines score "
                 f"HIGH ({', '.join(reasons) or 'history'}). Fix before submitting."),
        method=worst.method,
        metrics={"score": worst.score, "worst_line": worst.line,
                 "denial_probability": worst.denial_probability,
                 "billed_dollars": round(sum(int(line.get("billed_cents") or 0)
                                             for line in lines) / 100, 2)},
        evidence={"lines": [{"line": s.line, "cpt": line.get("cpt"), "score": s.score,
                             "category": s.category,
                             "factors": [{"name": f.name, "points": f.points,
                                          "evidence": f.evidence} for f in s.factors],
                             "fixes": [x.to_json() for x in s.fixes]}
                            for line, s in zip(lines, scores, strict=True)]},
        recommended_actions=["Hold the claim and correct the flagged lines before submitting.",
                             *sorted({f"Line {s.line}: {x.action.replace('_', ' ')} "
                                      f"{x.detail.get('modifier', '')}".strip()
                                      for s in scores for x in s.fixes})],
        window=Window(current_start=min(days), current_end=max(days)))
    return Alert(alert_id=alert_id(customer_id, finding, min(days)), customer_id=customer_id,
                 type=TYPE, severity=Severity.HIGH, payer=finding.payer, scope=finding.scope,
                 title=finding.title, summary=finding.summary, metrics=finding.metrics,
                 evidence=finding.evidence, recommended_actions=finding.recommended_actions,
                 window=finding.window, created_at=today, first_seen=today, last_seen=today,
                 methods=[finding.method])
