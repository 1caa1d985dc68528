"""The `risk_scorer` use-case: claim-change messages → a risk score for every line not yet
adjudicated, stored under `customers/{id}/risk_scores/{line doc id}`, and a
`high_risk_claim` alert for each claim whose worst line is HIGH.

Idempotent: a line version (its content hash) is scored once; a redelivered message finds
its hashes already scored and does nothing, and the alert id is stable per claim. Scores
live beside the line rather than in it, so re-ingesting a line never races a scorer's write.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from upstream.domain.automation.tiers import ActionType, ProposedAction
from upstream.domain.detect.findings import Alert
from upstream.domain.risk.alerts import high_risk_alert
from upstream.domain.risk.claim_factors import claim_factors
from upstream.domain.risk.models import model_from_document
from upstream.domain.risk.rules import default_rules, with_overrides
from upstream.domain.risk.score import LineScore, score_line
from upstream.events import CloudEventLike, RecordChange, RecordChangeBatch
from upstream.logs import get_logger
from upstream.ports import (
    AggregateStore,
    AlertStore,
    AuthorizationSource,
    Publisher,
    RiskStore,
    TenantReader,
)
from upstream.services.alert_publishing import save_and_publish
from upstream.services.automation import AutomationDeps, propose
from upstream.services.dead_letters import decode_or_dead_letter
from upstream.services.risk_history import HistoryCache, cached_history

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RiskDeps:
    tenants: TenantReader
    aggregates: AggregateStore
    authorizations: AuthorizationSource
    scores: RiskStore
    alerts: AlertStore
    publisher: Publisher
    claims_topic: str
    alerts_topic: str
    today: Callable[[], date] = lambda: datetime.now(UTC).date()
    histories: HistoryCache = field(default_factory=dict)
    automation: AutomationDeps | None = None


def handle_claims_event(event: CloudEventLike, deps: RiskDeps) -> dict[str, Any]:
    batch = decode_or_dead_letter(event, RecordChangeBatch.from_cloud_event, deps.publisher,
                                  deps.claims_topic, "malformed_change_batch")
    if batch is None:
        return {"status": "dead_lettered"}
    return score_batch(batch, deps)


def score_batch(batch: RecordChangeBatch, deps: RiskDeps) -> dict[str, Any]:
    if batch.kind != "claims":
        return {"status": "ignored", "reason": f"{batch.kind} are not scored"}
    customer = batch.customer_id
    own, foreign = batch.own_changes()
    if foreign:
        log.error("records for another tenant in a change batch",
                  extra={"customer_id": customer, "refused": foreign})
    pending = [c for c in own if c.record.get("outcome") == "PENDING"]
    done = deps.scores.scored_hashes(customer, [c.doc_id for c in pending]) if pending else {}
    todo = [c for c in pending if done.get(c.doc_id) != c.content_hash]
    if not todo:
        return {"status": "scored", "scored": 0, "already": len(pending)}
    today = deps.today()
    tenant = deps.tenants.get(customer) or {}
    rules = with_overrides(default_rules(), tenant.get("risk_rules"), tenant.get("state"))
    model = model_from_document(tenant.get("risk_model"))
    history = cached_history(deps.histories, customer, today, deps.aggregates.cells)
    numbers = {str(c.record.get("authorization_number")) for c in todo
               if c.record.get("authorization_number")}
    auths = [a for a in deps.authorizations.authorizations(customer)
             if str(a.get("authorization_number")) in numbers] if numbers else []
    by_claim: dict[str, list[tuple[RecordChange, LineScore]]] = defaultdict(list)
    stored: dict[str, dict[str, Any]] = {}
    now = datetime.now(UTC)
    claims: dict[str, list[RecordChange]] = defaultdict(list)
    for change in todo:
        claims[str(change.record.get("claim_id"))].append(change)
    extras = {change.doc_id: factors for changes in claims.values()
              for change, factors in zip(changes, claim_factors([c.record for c in changes]),
                                         strict=True)}
    for change in todo:
        found = score_line(change.record, history, rules, auths, extras[change.doc_id])
        found = model.rescore(found, change.record) if model else found
        by_claim[str(change.record.get("claim_id"))].append((change, found))
        stored[change.doc_id] = {
            "claim_id": found.claim_id, "line": found.line, "score": found.score,
            "category": found.category, "recommendation": found.recommendation,
            "method": found.method, "denial_probability": found.denial_probability,
            "reasons": list(found.reasons),
            "factors": [{"name": f.name, "points": f.points} for f in found.factors],
            "fixes": [x.to_json() for x in found.fixes],
            "content_hash": change.content_hash, "scored_at": now}
    alerts = []
    for pairs in by_claim.values():
        alert = high_risk_alert(customer, [c.record for c, _ in pairs], [s for _, s in pairs],
                                today)
        if alert is not None:
            alerts.append(alert)
    known = {a.alert_id for a in alerts if deps.alerts.get(customer, a.alert_id)}
    published = save_and_publish(customer, alerts, known, deps.alerts, deps.publisher,
                                 deps.alerts_topic) if alerts else []
    actions = _propose(customer, by_claim, alerts, deps) if deps.automation else {}
    deps.scores.save_scores(customer, stored)  # last: a crash before it rescores, harmlessly
    summary = {"status": "scored", "scored": len(stored), "already": len(pending) - len(todo),
               "high_risk_claims": len(alerts), "published": len(published), **actions}
    log.info("claim lines scored", extra={"customer_id": customer, **summary})
    return summary


def _propose(customer: str, by_claim: dict[str, list[tuple[RecordChange, LineScore]]],
             alerts: list[Alert], deps: RiskDeps) -> dict[str, int]:
    """Each line's fixes (add the required modifier), and a hold for each HIGH claim, go to
    the automation framework, which decides what runs by itself. Idempotent: a proposal
    already made is a duplicate there."""
    assert deps.automation is not None
    outcomes: dict[str, int] = defaultdict(int)
    high = {alert.scope.removeprefix("claim:") for alert in alerts}
    for claim_id, pairs in by_claim.items():
        for change, found in pairs:
            for fix in found.fixes:
                proposal = ProposedAction(
                    customer_id=customer, action_type=ActionType(fix.action),
                    target=f"claim:{claim_id}:{found.line}", confidence=fix.confidence,
                    dollars_cents=int(change.record.get("billed_cents") or 0),
                    details={**fix.detail, "current": {
                        "modifiers": list(change.record.get("modifiers") or [])},
                        "payer": change.record.get("payer"), "version": change.content_hash},
                    reason="required modifier missing (risk score)",
                    review_reasons=(fix.review,) if fix.review else ())
                outcomes[propose(proposal, deps.automation)["status"]] += 1
        if claim_id in high:
            worst = max((score for _, score in pairs), key=lambda s: s.score)
            proposal = ProposedAction(
                customer_id=customer, action_type=ActionType.HOLD_CLAIM,
                target=f"claim:{claim_id}", confidence=worst.score,
                dollars_cents=sum(int(c.record.get("billed_cents") or 0) for c, _ in pairs),
                details={"claim_id": claim_id, "payer": pairs[0][0].record.get("payer"),
                         "versions": sorted(c.content_hash for c, _ in pairs)},
                reason=f"denial risk {worst.score}/100")
            outcomes[propose(proposal, deps.automation)["status"]] += 1
    return {f"actions_{status}": count for status, count in sorted(outcomes.items())}
