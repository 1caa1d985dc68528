"""The detectors and aggregator use-cases with fakes for their callers' sake (storage is
proven on the emulators in tests/integration)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from tests.fakes import FakePublisher
from tests.unit.test_detectors import RUN, stream
from upstream.domain.aggregates import DailyCell
from upstream.domain.detect.findings import Alert
from upstream.events import DetectorRun, RecordChange, RecordChangeBatch
from upstream.services.aggregate_changes import AggregateDeps, handle_change_event
from upstream.services.detector_runs import DetectorDeps, handle_run, handle_run_event


class Event:
    def __init__(self, payload: bytes) -> None:
        self.data: dict[str, Any] = {"message": {"data": base64.b64encode(payload).decode()}}

    def __getitem__(self, key: str) -> Any:
        return {"type": "google.cloud.pubsub.topic.v1.messagePublished"}[key]


class Tenants:
    def list_ids(self) -> list[str]:
        return ["a", "b", "c"]


class Aggregates:
    def __init__(self, cells: dict[str, list[DailyCell]],
                 broken: frozenset[str] = frozenset()) -> None:
        self.by_tenant, self.broken = cells, broken
        self.applied: list[Any] = []

    def cells(self, customer_id: str, first: date, end: date) -> list[DailyCell]:
        if customer_id in self.broken:
            raise ValueError("aggregate for 2025-01-02 has negative counters")
        return [c for c in self.by_tenant.get(customer_id, []) if first <= c.day < end]

    def apply(self, customer_id: str, changes: Any) -> int:
        self.applied.append((customer_id, list(changes)))
        return len(changes)

    def apply_new(self, customer_id: str, changes: Any) -> bool:
        raise AssertionError("only ingest counts new lines itself")


class Alerts:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}

    def recent(self, customer_id: str, since: date) -> list[Alert]:
        return [Alert.model_validate({k: v for k, v in d.items() if k != "published_severity"})
                for d in self.docs.values() if d["customer_id"] == customer_id]

    def save(self, customer_id: str, alerts: Iterable[Alert], known: set[str]) -> list[str]:
        out = []
        for alert in alerts:
            doc = self.docs.setdefault(alert.alert_id, {})
            doc.update(alert.to_document())
            if doc.get("published_severity") != doc["severity"]:
                out.append(alert.alert_id)
        return out

    def get(self, customer_id: str, alert_id: str) -> dict[str, Any] | None:
        found = self.docs.get(alert_id)
        return dict(found) if found is not None else None

    def mark_published(self, customer_id: str, alert_id: str, severity: str) -> None:
        self.docs[alert_id]["published_severity"] = severity

    def record_run(self, customer_id: str, run_id: str, summary: dict[str, Any]) -> None:
        self.runs[f"{customer_id}/{run_id}"] = summary


def deps(aggregates: Aggregates, alerts: Alerts, publisher: FakePublisher) -> DetectorDeps:
    return DetectorDeps(tenants=Tenants(), aggregates=aggregates, alerts=alerts,
                        publisher=publisher, runs_topic="detector-runs", alerts_topic="alerts",
                        today=lambda: RUN)


def test_the_scheduler_message_fans_out_one_run_per_tenant() -> None:
    publisher = FakePublisher()
    result = handle_run(DetectorRun(run="weekly", customer="*"),
                        deps(Aggregates({}), Alerts(), publisher))
    assert result == {"status": "fanned_out", "tenants": 3}
    sent = [json.loads(data) for topic, data, _ in publisher.messages if topic == "detector-runs"]
    assert [m["customer"] for m in sent] == ["a", "b", "c"]
    assert {m["as_of"] for m in sent} == {RUN.isoformat()}  # one day for all, fixed at fan-out


def test_a_run_publishes_each_alert_once_even_when_repeated() -> None:
    cells = stream("Aetna", per_day=30, rate=0.08, change=RUN - timedelta(days=28), factor=2.5)
    publisher, alerts = FakePublisher(), Alerts()
    d = deps(Aggregates({"a": cells}), alerts, publisher)
    first = handle_run(DetectorRun(run="weekly", customer="a", as_of=RUN), d)
    assert first["alerts_published"] >= 1
    again = handle_run(DetectorRun(run="weekly", customer="a", as_of=RUN), d)
    assert again["alerts_published"] == 0
    published = [json.loads(data)["alert_id"] for topic, data, _ in publisher.messages
                 if topic == "alerts"]
    assert sorted(published) == sorted(alerts.docs)


def test_a_corrupt_tenant_fails_loudly() -> None:
    d = deps(Aggregates({}, broken=frozenset({"a"})), Alerts(), FakePublisher())
    with pytest.raises(ValueError, match="negative"):
        handle_run(DetectorRun(run="daily", customer="a", as_of=RUN), d)


@pytest.mark.parametrize("payload", [
    b"not json", b'{"run": "hourly", "customer": "a"}', b'{"run": "daily"}',
    b'{"run": "daily", "customer": "../x"}', b'{"run": "daily", "customer": "a", "x": 1}',
    b'{"run": "daily", "customer": "a", "as_of": "yesterday"}'])
def test_malformed_run_messages_are_dead_lettered(payload: bytes) -> None:
    publisher = FakePublisher()
    result = handle_run_event(Event(payload), deps(Aggregates({}), Alerts(), publisher))
    assert result["status"] == "dead_lettered"
    ((topic, _, attributes),) = publisher.messages
    assert topic == "detector-runs-dlq" and attributes["reason"] == "malformed_detector_run"


def test_detector_run_accepts_what_the_scheduler_sends() -> None:
    run = DetectorRun.model_validate_json(b'{"run": "weekly", "customer": "*"}')
    assert run.as_of is None
    with pytest.raises(ValidationError):
        DetectorRun.model_validate_json(b'{"run": "weekly", "customer": ""}')


def _batch(customer: str, records: list[dict[str, Any]]) -> bytes:
    return RecordChangeBatch(kind="claims", customer_id=customer, upload_id="u", batch=0,
                             changes=[RecordChange(doc_id=f"d{i}", content_hash="h", record=r)
                                      for i, r in enumerate(records)]).to_bytes()


def test_the_aggregator_refuses_records_of_another_tenant() -> None:
    aggregates, publisher = Aggregates({}), FakePublisher()
    stamp = datetime(2026, 1, 1).isoformat()
    records = [{"customer_id": "a", "updated_at": stamp, "payer": "X", "outcome": "DENIED"},
               {"customer_id": "b", "updated_at": stamp, "payer": "X", "outcome": "DENIED"}]
    result = handle_change_event(Event(_batch("a", records)),
                                 AggregateDeps(aggregates, publisher, "claims"))
    assert result["refused"] == 1 and result["moved"] == 1
    ((customer, changes),) = aggregates.applied
    assert customer == "a" and [c[3]["customer_id"] for c in changes] == ["a"]


def test_the_aggregator_dead_letters_what_is_not_a_change_batch() -> None:
    publisher = FakePublisher()
    result = handle_change_event(Event(b'{"kind": "claims"}'),
                                 AggregateDeps(Aggregates({}), publisher, "claims"))
    assert result["status"] == "dead_lettered"
    assert publisher.messages[0][0] == "claims-dlq"


@pytest.mark.parametrize("flag, status", [("1", "already_aggregated"), ("0", "applied"),
                                          ("yes", "applied"), (None, "applied")])
def test_the_aggregator_skips_only_batches_their_writer_counted(flag: str | None,
                                                                status: str) -> None:
    aggregates = Aggregates({})
    records = [{"customer_id": "a", "updated_at": datetime(2026, 1, 1).isoformat(),
                "payer": "X", "outcome": "DENIED"}]
    event = Event(_batch("a", records))
    if flag is not None:
        event.data["message"]["attributes"] = {"aggregated": flag}
    result = handle_change_event(event, AggregateDeps(aggregates, FakePublisher(), "claims"))
    assert result["status"] == status
    assert len(aggregates.applied) == (0 if status == "already_aggregated" else 1)


def test_authorization_batches_are_not_aggregated() -> None:
    aggregates = Aggregates({})
    payload = RecordChangeBatch(kind="authorizations", customer_id="a", upload_id="u", batch=0,
                                changes=[]).to_bytes()
    result = handle_change_event(Event(payload),
                                 AggregateDeps(aggregates, FakePublisher(), "claims"))
    assert result["status"] == "ignored" and aggregates.applied == []


class Authorizations:
    def __init__(self, auths: list[dict[str, Any]]) -> None:
        self.auths, self.statuses = auths, {}  # type: ignore[var-annotated]
        self.lines: list[dict[str, Any]] = []

    def authorizations(self, customer_id: str) -> list[dict[str, Any]]:
        return self.auths

    def lines_for_authorizations(self, customer_id: str, numbers: Any,
                                 patient_keys: Any) -> list[dict[str, Any]]:
        return []

    def denied_lines(self, customer_id: str, payer: str, first: str,
                     end: str) -> list[dict[str, Any]]:
        return [{"claim_id": f"C{i}", "patient_key": "k" * 64, "payer": payer, "cpt": "97153",
                 "billed_cents": 100 * i, "outcome": "DENIED", "patient_id": "MRN1"}
                for i in range(40)]

    def set_authorization_status(self, customer_id: str, number: str, status: str) -> None:
        self.statuses[number] = status

    def lines_since(self, customer_id: str, since: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if str(line.get("service_date")) >= since]


def test_a_run_lists_affected_lines_and_moves_authorization_statuses() -> None:
    from dataclasses import replace

    cells = stream("Aetna", per_day=30, rate=0.08, change=RUN - timedelta(days=28), factor=2.5)
    auths = Authorizations([
        {"authorization_number": "A1", "payer": "Aetna", "patient_key": "p",
         "start_date": "2025-01-01", "end_date": (RUN + timedelta(days=10)).isoformat(),
         "status": "ACTIVE"},
        {"authorization_number": "A0", "payer": "Aetna", "patient_key": "q",
         "start_date": "2025-01-01", "end_date": (RUN - timedelta(days=2)).isoformat()}])
    alerts = Alerts()
    d = replace(deps(Aggregates({"a": cells}), alerts, FakePublisher()), authorizations=auths)
    handle_run(DetectorRun(run="weekly", customer="a", as_of=RUN), d)
    assert auths.statuses == {"A1": "EXPIRING_SOON", "A0": "EXPIRED"}
    drift = [a for a in alerts.docs.values() if a["type"] == "denial_rate_drift"]
    lines = drift[0]["evidence"]["affected_lines"]
    assert len(lines) == 25 and drift[0]["evidence"]["affected_lines_total"] == 40
    assert lines[0]["billed_cents"] == 3900  # largest first
    assert all("patient_id" not in line for line in lines)
    assert {a["type"] for a in alerts.docs.values()} >= {"auth_expiring"}


def test_an_expiring_authorization_gets_one_prepared_reauthorization() -> None:
    from dataclasses import replace

    from tests.unit.test_automation import Store
    from tests.unit.test_score_claims import Tenants
    from upstream.services.automation import AutomationDeps

    auths = Authorizations([
        {"authorization_number": "A1", "payer": "Aetna", "patient_key": "p",
         "start_date": "2025-01-01", "end_date": (RUN + timedelta(days=10)).isoformat(),
         "units_authorized": 100, "status": "ACTIVE"}])
    store, alerts, publisher = Store(), Alerts(), FakePublisher()
    automation = AutomationDeps(tenants=Tenants({"a": {}}), store=store, alerts=alerts,  # type: ignore[arg-type]
                                publisher=publisher, alerts_topic="alerts")
    d = replace(deps(Aggregates({"a": []}), alerts, publisher), authorizations=auths,
                automation=automation)
    for day in (RUN, RUN + timedelta(days=1)):  # the next day's run proposes nothing new
        handle_run(DetectorRun(run="daily", customer="a", as_of=day), d)
    [action] = store.docs.values()
    assert (action["action_type"], action["target"], action["status"]) == (
        "reauth_request", "auth:A1", "queued_for_review")  # automation off by default
    assert action["details"]["authorization_number"] == "A1"


def test_the_weekly_run_adds_the_specialty_checks() -> None:
    from dataclasses import replace

    from tests.unit.test_score_claims import Tenants

    auths = Authorizations([])
    tenants = Tenants({"a": {}})
    auths.lines = [{"claim_id": f"C{i}", "payer": "Aetna", "cpt": "97155", "units": 2,
                    "minutes": 30, "provider_credential": "RBT", "patient_key": "p",
                    "service_date": (RUN - timedelta(days=3)).isoformat()} for i in range(3)]
    alerts = Alerts()
    d = replace(deps(Aggregates({"a": []}), alerts, FakePublisher()), authorizations=auths,
                tenants_store=tenants)
    handle_run(DetectorRun(run="daily", customer="a", as_of=RUN), d)
    assert not [a for a in alerts.docs.values() if a["type"].startswith("aba_")]
    handle_run(DetectorRun(run="weekly", customer="a", as_of=RUN), d)
    [found] = [a for a in alerts.docs.values() if a["type"] == "aba_credential_mismatch"]
    assert found["metrics"]["lines"] == 3 and found["evidence"]["lines"][0]["patient_key"] == "p"
    report = tenants.documents["a"]["risk_model_report"]  # refitted weekly, judged, not adopted
    assert report["adopted"] is False and tenants.documents["a"]["risk_model"] is None


def test_the_first_run_over_a_practice_history_is_flagged_and_asks_for_one_summary() -> None:
    from dataclasses import replace

    from tests.unit.test_score_claims import Tenants

    cells = stream("Aetna", per_day=30, rate=0.08, change=RUN - timedelta(days=28), factor=2.5)
    publisher, alerts, tenants = FakePublisher(), Alerts(), Tenants({"a": {}})
    d = replace(deps(Aggregates({"a": cells}), alerts, publisher), tenants_store=tenants)
    handle_run(DetectorRun(run="weekly", customer="a", as_of=RUN), d)
    sent = [json.loads(data) for topic, data, _ in publisher.messages if topic == "alerts"]
    raised = [m for m in sent if "alert_id" in m]
    assert raised and all(m["first_run"] for m in raised)
    assert sent[-1] == {"digest": "first_run", "customer": "a", "alerts": [
        [m["alert_id"], m["type"], m["severity"]] for m in raised]}
    assert tenants.documents["a"]["first_detector_run"] == RUN.isoformat()
    rerun = handle_run(DetectorRun(run="weekly", customer="a", as_of=RUN), d)
    assert rerun["alerts_published"] == 0  # the same day again changes nothing
    assert all(doc["first_run"] for doc in alerts.docs.values())
    sent = [json.loads(data) for topic, data, _ in publisher.messages if topic == "alerts"]
    later = RUN + timedelta(days=7)
    handle_run(DetectorRun(run="weekly", customer="a", as_of=later), d)
    newer = [json.loads(data) for topic, data, _ in publisher.messages[len(sent):]
             if topic == "alerts"]
    assert all(not m.get("first_run") for m in newer if "alert_id" in m)
    assert not [m for m in newer if "digest" in m]


class PayerReports:
    def __init__(self) -> None:
        self.saved: dict[str, tuple[date, list[dict[str, Any]]]] = {}

    def save_payer_report(self, customer: str, as_of: date,
                          payers: list[dict[str, Any]]) -> None:
        self.saved[customer] = (as_of, payers)

    def payer_report(self, customer: str) -> dict[str, Any] | None:
        return None


def test_the_weekly_run_stores_the_payer_report_the_daily_run_does_not() -> None:
    from dataclasses import replace

    from tests.claim_streams import Behaviour, documents
    from upstream.domain.aggregates import cells_from_documents

    docs = [d for b in (Behaviour("Aetna"), Behaviour("Cigna"), Behaviour("Humana"),
                        Behaviour("Denier", denial_rate=0.3)) for d in documents(b, 300)]
    as_of = date(2025, 11, 1)
    reports = PayerReports()
    d = replace(deps(Aggregates({"a": cells_from_documents(docs)}), Alerts(), FakePublisher()),
                payer_reports=reports)
    handle_run(DetectorRun(run="daily", customer="a", as_of=as_of), d)
    assert reports.saved == {}
    handle_run(DetectorRun(run="weekly", customer="a", as_of=as_of), d)
    day, payers = reports.saved["a"]
    assert day == as_of
    assert {p["payer"]: p["archetype"] for p in payers}["Denier"] == "Aggressive Denier"
    handle_run(DetectorRun(run="weekly", customer="a", as_of=as_of), d)  # a rerun: the same
    assert reports.saved["a"] == (day, payers)


def test_the_weekly_run_compares_the_practice_fee_schedule() -> None:
    from dataclasses import replace

    from tests.claim_streams import Behaviour, documents
    from tests.unit.test_score_claims import Tenants
    from upstream.domain.aggregates import cells_from_documents

    docs = [d for b in (Behaviour("UnitedHealthcare", price=0.8), Behaviour("Cigna"))
            for d in documents(b, 150)]
    tenants = Tenants({"a": {"fee_schedule": [
        {"payer": "UHC", "cpt": "97153", "cents_per_unit": 2160}]}})  # an alias in the schedule
    alerts = Alerts()
    d = replace(deps(Aggregates({"a": cells_from_documents(docs)}), alerts, FakePublisher()),
                tenants_store=tenants)
    handle_run(DetectorRun(run="daily", customer="a", as_of=date(2025, 6, 2)), d)
    assert not [a for a in alerts.docs.values() if "contract" in a["title"]]
    handle_run(DetectorRun(run="weekly", customer="a", as_of=date(2025, 6, 2)), d)
    found = [a for a in alerts.docs.values() if "contract" in a["title"]]
    assert [(a["payer"], a["scope"]) for a in found] == [("UnitedHealthcare", "cpt:97153")]
