"""The risk scorer's use-case with in-memory stores for its callers' sake: what is scored,
what is skipped on redelivery, which claims become alerts. Through Firestore and Pub/Sub:
tests/integration/test_risk_on_emulators.py."""

from __future__ import annotations

from datetime import date
from typing import Any

from tests.fakes import FakePublisher
from tests.unit.test_detector_runs import Aggregates, Alerts, Event
from upstream.events import RecordChange, RecordChangeBatch
from upstream.services.score_claims import RiskDeps, handle_claims_event

TODAY = date(2025, 6, 2)


class Tenants:
    def __init__(self, documents: dict[str, dict[str, Any]]) -> None:
        self.documents = documents

    def get(self, customer_id: str) -> dict[str, Any] | None:
        return self.documents.get(customer_id)

    def upsert(self, customer_id: str, fields: dict[str, Any]) -> None:
        self.documents.setdefault(customer_id, {}).update(fields)


class Auths:
    def authorizations(self, customer_id: str) -> list[dict[str, Any]]:
        return [{"authorization_number": "OK1", "start_date": "2025-01-01",
                 "end_date": "2025-12-31"}]


class Scores:
    def __init__(self) -> None:
        self.saved: dict[str, dict[str, Any]] = {}

    def scored_hashes(self, customer_id: str, doc_ids: list[str]) -> dict[str, str]:
        return {d: self.saved[d]["content_hash"] for d in doc_ids if d in self.saved}

    def save_scores(self, customer_id: str, scores: dict[str, dict[str, Any]]) -> None:
        self.saved.update(scores)


STRICT = {"risk_rules": {"modifiers": [{"payer": "Cigna", "cpt": "97110", "modifiers": "GP",
                                        "points_missing": 80}]}}


def record(claim: str, line: int, **changes: Any) -> dict[str, Any]:
    return {"customer_id": "acme", "claim_id": claim, "line": line, "payer": "Cigna",
            "cpt": "97110", "modifiers": ["GP"], "service_date": "2025-06-01",
            "outcome": "PENDING", "billed_cents": 10000, **changes}


def batch(*records: dict[str, Any], kind: str = "claims") -> Event:
    changes = [RecordChange(doc_id=f"{r['claim_id']}-{r['line']}",
                            content_hash=str(hash(str(sorted(r.items())))), record=r)
               for r in records]
    return Event(RecordChangeBatch(kind=kind, customer_id="acme", upload_id="u", batch=0,  # type: ignore[arg-type]
                                   changes=changes).to_bytes())


def deps() -> tuple[RiskDeps, Scores, Alerts, FakePublisher]:
    scores, alerts, publisher = Scores(), Alerts(), FakePublisher()
    return RiskDeps(tenants=Tenants({"acme": STRICT}), aggregates=Aggregates({}),  # type: ignore[arg-type]
                    authorizations=Auths(), scores=scores, alerts=alerts,  # type: ignore[arg-type]
                    publisher=publisher, claims_topic="claims", alerts_topic="alerts",
                    today=lambda: TODAY), scores, alerts, publisher


def test_pending_lines_are_scored_and_a_high_claim_alerts_once() -> None:
    risk, scores, alerts, publisher = deps()
    event = batch(record("C1", 1, modifiers=[]), record("C1", 2), record("C2", 1),
                  record("C3", 1, outcome="PAID", modifiers=[]))
    summary = handle_claims_event(event, risk)
    assert summary == {"status": "scored", "scored": 3, "already": 0, "high_risk_claims": 1,
                       "published": 1}
    assert scores.saved["C1-1"]["category"] == "HIGH" and "C3-1" not in scores.saved
    assert scores.saved["C1-1"]["fixes"][0]["modifier"] == "GP"
    [(topic, _, attributes)] = publisher.messages
    assert topic == "alerts" and attributes["type"] == "high_risk_claim"
    again = handle_claims_event(event, risk)  # a redelivery scores nothing, publishes nothing
    assert again == {"status": "scored", "scored": 0, "already": 3}
    assert len(publisher.messages) == 1 and len(alerts.docs) == 1


def test_other_tenants_records_and_other_kinds_are_not_scored() -> None:
    risk, scores, _, publisher = deps()
    assert handle_claims_event(batch(record("C1", 1, customer_id="evil")), risk)["scored"] == 0
    assert handle_claims_event(batch(record("C1", 1), kind="authorizations"),
                               risk)["status"] == "ignored"
    assert handle_claims_event(Event(b"not json"), risk)["status"] == "dead_lettered"
    assert publisher.messages[0][0] == "claims-dlq" and not scores.saved


def test_a_tenant_without_rules_or_history_scores_low() -> None:
    risk, scores, _, _ = deps()
    bare = RiskDeps(**{**{f: getattr(risk, f) for f in risk.__dataclass_fields__},
                       "tenants": Tenants({"acme": {"risk_rules": {"disable_defaults": True}}}),
                       "histories": {}})
    handle_claims_event(batch(record("C9", 1, modifiers=[], cpt="ZZ999")), bare)
    assert scores.saved["C9-1"]["score"] == 0 and scores.saved["C9-1"]["category"] == "LOW"


def test_fixes_and_holds_go_to_automation_once() -> None:
    from tests.unit.test_automation import Store
    from upstream.services.automation import AutomationDeps

    risk, _, alerts, publisher = deps()
    store = Store()
    automated = RiskDeps(**{**{f: getattr(risk, f) for f in risk.__dataclass_fields__},
                            "automation": AutomationDeps(
                                tenants=Tenants({"acme": {"automation": {"auto_execute": True}}}),
                                store=store, alerts=alerts, publisher=publisher,  # type: ignore[arg-type]
                                alerts_topic="alerts")})
    summary = handle_claims_event(batch(record("C1", 1, modifiers=[])), automated)
    # GP is the only modifier the practice's rule allows: 97% sure, under $1,000 → executed;
    # the hold of a HIGH claim (score 80 < 95) waits for a biller
    assert summary["actions_executed"] == 1 and summary["actions_queued_for_review"] == 1
    kinds = sorted((d["action_type"], d["status"]) for d in store.docs.values())
    assert kinds == [("add_modifier", "executed"), ("hold_claim", "queued_for_review")]
    handle_claims_event(batch(record("C1", 1, modifiers=[])), automated)
    assert len(store.docs) == 2  # the redelivery proposes nothing new
