"""`make chaos`: `kill -9` of each function mid-work on a stack of its own, the function
brought back, and the final Firestore state compared with a recompute from scratch.

Scenarios (each prints lost and doubled; any non-zero fails the target):
- ingest: a year of claims uploaded; file_ingest, the aggregator and the risk scorer each
  killed while it works and restarted (ingest counts a new file's lines itself, so the
  aggregator there holds only batches redone after the crash). Stored lines = what
  `validate` accepts offline;
  aggregates = a recompute from the stored lines (reconcile's dry run: 0 cells, 0 ledger
  entries wrong), with no `reconcile` run: Pub/Sub's retries alone must carry it; every
  pending line scored once.
- ehr: signed EHR resources posted to ehr_webhook while fhir_mapper and the aggregator are
  killed and restarted: every resource's lines stored, once, and aggregated exactly.
- fetch: athenahealth's id-only events while ehr_fetcher is killed and restarted: every event
  fetched from the fake athenaOne and resolved, the aggregates exact.
- runs: the detectors killed during the weekly run and the alert dispatcher down while it
  should deliver: the run finishes, each alert is written once and e-mailed once per severity.
- emulators: the Pub/Sub, then the Firestore emulator frozen (SIGSTOP) 15 s mid-ingest.

Retries as the stack sets them: 100 delivery attempts about a second apart (production: 100
attempts 10–600 s apart; the emulator drops a failed push for good once a retry policy is
set, see stack/topology.py), the bridge retrying as Eventarc does. The upload lease is 30 s
here (540 s in production) so a killed upload is taken over within the run:
CHAOS_LEASE_SECONDS.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import requests

LINES = int(os.environ.get("CHAOS_LINES", "20000"))
LEASE_SECONDS = os.environ.get("CHAOS_LEASE_SECONDS", "30")
SETTLE_SECONDS = float(os.environ.get("CHAOS_SETTLE_SECONDS", "420"))
EHR_EVENTS = int(os.environ.get("CHAOS_EHR_EVENTS", "150"))
SECRET = "chaos-webhook-secret"


def _config() -> Any:
    from upstream.stack.config import StackConfig

    data_dir = Path(tempfile.mkdtemp(prefix="upstream-chaos-"))
    return StackConfig(project="upstream-chaos", data_dir=data_dir, firestore_port=21681,
                       pubsub_port=21682, storage_port=21683, functions_base_port=21690,
                       athena_port=21689, smtp_port=21688)


class Stack:
    """The chaos stack: the processes it started, killed only after proving they are its own."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def identity(self, name: str) -> Any:
        from upstream.stack import processes

        entry = json.loads(self.config.state_file.read_text())["components"][name]
        found = processes.Identity.from_json(entry)
        assert found is not None and processes.owned(found), f"{name} is not ours to kill"
        return found

    def kill(self, name: str) -> None:
        from upstream.stack import processes

        found = self.identity(name)
        os.killpg(found.pid, signal.SIGKILL)
        while processes.alive(found.pid):
            time.sleep(0.05)
        try:
            os.waitpid(found.pid, os.WNOHANG)
        except ChildProcessError:
            pass
        print(f"  kill -9 {name} (pid {found.pid})")

    def freeze(self, name: str, seconds: float) -> None:
        found = self.identity(name)
        os.killpg(found.pid, signal.SIGSTOP)
        print(f"  SIGSTOP {name} for {seconds:.0f} s")
        time.sleep(seconds)
        os.killpg(found.pid, signal.SIGCONT)

    def restart(self) -> None:
        from upstream.stack import manager

        started = time.perf_counter()
        manager.up(self.config)
        print(f"  restarted what was down in {time.perf_counter() - started:.1f} s")


def _wait(what: str, check: Callable[[], tuple[bool, str]], timeout: float) -> tuple[bool, str,
                                                                                     float]:
    started = time.perf_counter()
    ok, detail = check()
    while not ok and time.perf_counter() - started < timeout:
        time.sleep(5)
        ok, detail = check()
    return ok, detail, time.perf_counter() - started


def _tenant(config: Any, customer: str, **extra: Any) -> None:
    from upstream.adapters.clients import firestore_client
    from upstream.adapters.firestore_store import FirestoreTenants
    from upstream.adapters.secrets import LocalFileSecretStore
    from upstream.services.tenants import patient_key_secret, webhook_secret

    secrets = LocalFileSecretStore(config.secrets_file)
    secrets.put(patient_key_secret(customer), os.urandom(32))
    secrets.put(webhook_secret(customer), SECRET.encode())
    FirestoreTenants(firestore_client()).upsert(customer, {"name": customer, **extra})


def _consistent(customer: str) -> tuple[bool, str]:
    from upstream.adapters.wiring import reconcile_store
    from upstream.services.recovery import reconcile

    report = reconcile(customer, reconcile_store(), apply=False)
    ok = report["cells_wrong"] == 0 and report["ledger_wrong"] == 0
    return ok, (f"{report['lines']:,} lines, {report['cells']:,} cells; wrong: "
                f"{report['cells_wrong']} cells, {report['ledger_wrong']} ledger entries")


def _lost_doubled(customer: str) -> tuple[int, int]:
    """Decided lines the cells miss (lost) or count twice (doubled), from the totals."""
    from upstream.adapters.wiring import reconcile_store

    lines, cells = reconcile_store().totals(customer)
    gap = int(lines.decided - cells.decided)
    return max(gap, 0), max(-gap, 0)


RESULTS: list[tuple[str, str, int, int, float]] = []


def _record(scenario: str, what: str, lost: int, doubled: int, seconds: float) -> None:
    RESULTS.append((scenario, what, lost, doubled, seconds))
    print(f"  {what}: lost {lost}, doubled {doubled} (settled in {seconds:.0f} s)")


def _record_aggregates(scenario: str, customer: str, started: float) -> None:
    """Waits until the cells equal a recompute from the stored lines (no reconcile is run:
    the retries alone must get there), then records what was lost or doubled."""
    ok, detail, _ = _wait("aggregates", lambda: _consistent(customer), SETTLE_SECONDS)
    lost, doubled = _lost_doubled(customer)
    _record(scenario, f"aggregator: {detail}", lost + (0 if ok else 1), doubled,
            time.perf_counter() - started)


def _upload(config: Any, customer: str, data: bytes, name: str) -> str:
    from upstream.adapters.clients import storage_client
    from upstream.events import content_id

    storage_client().bucket(config.bucket).blob(f"uploads/{customer}/claims/{name}") \
        .upload_from_string(data, content_type="text/csv")
    return content_id(hashlib.md5(data).hexdigest(), len(data))


def _expected_lines(data: bytes) -> tuple[int, int]:
    from upstream.offline import offline_context, read_file

    report, records = read_file(io.BytesIO(data), None, offline_context("chaos"))
    pending = sum(1 for r in records if getattr(r, "outcome", None) == "PENDING")
    return report.accepted, pending


def _claims_file(seed: int, lines: int) -> bytes:
    """A year of claims with the shifts `upstream sample` injects (a payer denying three
    times as often from October), so the weekly run raises HIGH alerts to e-mail."""
    from upstream.domain.sample import Shift, export_claims, generate

    shifts = [Shift("UnitedHealthcare", date(2025, 10, 1), denial_factor=3.0)]
    sample = generate(date(2025, 1, 1), date(2025, 12, 31), lines_per_day=lines / 266,
                      patients=1500, seed=seed, shifts=shifts)
    return export_claims(sample.claims[:lines], "athena", seed=seed)


def scenario_ingest(stack: Stack) -> None:
    from upstream.adapters.clients import firestore_client
    from upstream.adapters.firestore_store import FirestoreRecords, FirestoreUploads
    from upstream.domain.records import RecordKind

    print(f"\n[ingest] {LINES:,} lines; kill -9 file_ingest, aggregator, risk_scorer mid-work")
    customer = "chaos-ingest"
    _tenant(stack.config, customer)
    data = _claims_file(7, LINES)
    expected, pending = _expected_lines(data)
    upload_id = _upload(stack.config, customer, data, "year.csv")
    uploads, records = FirestoreUploads(firestore_client()), FirestoreRecords(firestore_client())
    started = time.perf_counter()
    while records.count(customer, RecordKind.CLAIMS) < expected // 5:
        time.sleep(0.2)
    stack.kill("file_ingest")
    stack.kill("aggregator")
    time.sleep(3)
    stack.restart()
    time.sleep(2)
    stack.kill("risk_scorer")
    time.sleep(3)
    stack.restart()

    def upload_done() -> tuple[bool, str]:
        summary = uploads.get_upload(customer, upload_id) or {}
        stored = records.count(customer, RecordKind.CLAIMS)
        return summary.get("status") == "complete" and stored >= expected, (
            f"upload {summary.get('status')}, {stored:,} of {expected:,} lines stored")

    ok, detail, _ = _wait("upload", upload_done, SETTLE_SECONDS)
    stored = records.count(customer, RecordKind.CLAIMS)
    _record("ingest", "file_ingest: lines stored", max(expected - stored, 0),
            max(stored - expected, 0), time.perf_counter() - started)
    if not ok:
        print(f"  NOT SETTLED: {detail}")
    _record_aggregates("ingest", customer, started)

    def scored() -> tuple[bool, str]:
        from upstream.adapters.firestore_risk import RISK_SCORES
        from upstream.adapters.firestore_store import tenant_collection

        count = tenant_collection(firestore_client(), customer, RISK_SCORES).count().get()  # type: ignore[no-untyped-call]
        found = int(count[0][0].value)
        return found >= pending, f"{found:,} of {pending:,} pending lines scored"

    ok, detail, _ = _wait("scores", scored, SETTLE_SECONDS)
    found = int(detail.split(" of ")[0].replace(",", ""))
    _record("ingest", f"risk_scorer: {detail}", max(pending - found, 0), max(found - pending, 0),
            time.perf_counter() - started)


def _signed(body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    mac = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Timestamp": stamp, "X-Signature": f"sha256={mac}",
            "Content-Type": "application/fhir+json"}


def _eob(number: int) -> dict[str, Any]:
    return {
        "resourceType": "ExplanationOfBenefit", "id": f"eob-{number}", "status": "active",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type",
                             "code": "professional"}]},
        "use": "claim", "patient": {"reference": f"Patient/p{number % 40}"},
        "created": "2025-03-04", "insurer": {"display": "UHC"},
        "provider": {"reference": "Practitioner/1"}, "claim": {"reference": f"Claim/E{number}"},
        "outcome": "complete", "insurance": [{"focal": True,
                                              "coverage": {"reference": "Coverage/1"}}],
        "payment": {"date": "2025-03-10"},
        "item": [{"sequence": 1, "productOrService": {"coding": [
            {"system": "http://www.ama-assn.org/go/cpt", "code": "97153"}]},
            "servicedDate": "2025-03-01", "net": {"value": 240.0, "currency": "USD"},
            "adjudication": [
                {"category": {"coding": [{"code": "submitted"}]}, "amount": {"value": 240}},
                {"category": {"coding": [{"code": "benefit"}]},
                 "amount": {"value": 0 if number % 3 else 200}}]}]}


def scenario_ehr(stack: Stack) -> None:
    from upstream.adapters.clients import firestore_client
    from upstream.adapters.firestore_store import FirestoreRecords
    from upstream.domain.records import RecordKind
    from upstream.stack import manager

    print(f"\n[ehr] {EHR_EVENTS} signed resources to ehr_webhook; kill -9 fhir_mapper and the "
          f"aggregator mid-way")
    customer = "chaos-ehr"
    _tenant(stack.config, customer)
    url = manager.function_urls(stack.config)["ehr_webhook"]
    started = time.perf_counter()
    refused = 0
    for number in range(EHR_EVENTS):
        if number == EHR_EVENTS // 3:
            stack.kill("fhir_mapper")
            stack.kill("aggregator")  # every EHR line reaches the aggregates through it
        if number == 2 * EHR_EVENTS // 3:
            stack.restart()
        body = json.dumps(_eob(number)).encode()
        answer = requests.post(url, data=body, timeout=30, headers={
            **_signed(body), "X-Customer-ID": customer, "X-Idempotency-Key": f"evt-{number}"})
        refused += answer.status_code != 200
    records = FirestoreRecords(firestore_client())

    def stored() -> tuple[bool, str]:
        count = records.count(customer, RecordKind.CLAIMS)
        return count >= EHR_EVENTS, f"{count} of {EHR_EVENTS} lines stored"

    _, detail, _ = _wait("ehr", stored, SETTLE_SECONDS)
    count = records.count(customer, RecordKind.CLAIMS)
    _record("ehr", f"fhir_mapper: {detail}; webhook refused {refused}",
            max(EHR_EVENTS - count, 0) + refused, max(count - EHR_EVENTS, 0),
            time.perf_counter() - started)
    _record_aggregates("ehr", customer, started)


def scenario_fetch(stack: Stack) -> None:
    """athenahealth's id-only events: athena_webhook → fhir_mapper → ehr-fetch → ehr_fetcher
    (the fake athenaOne over HTTP), with the fetcher killed mid-way and brought back."""
    from upstream.adapters.clients import firestore_client
    from upstream.adapters.firestore_store import FirestoreTenants, tenant_collection
    from upstream.adapters.secrets import LocalFileSecretStore
    from upstream.services.tenants import athena_oauth_secret, athena_secret
    from upstream.stack import manager

    events = max(30, EHR_EVENTS // 3)
    print(f"\n[fetch] {events} athenahealth events; kill -9 ehr_fetcher mid-way")
    customer = "chaos-athena"
    _tenant(stack.config, customer)
    secrets = LocalFileSecretStore(stack.config.secrets_file)
    secrets.put(athena_secret(customer), SECRET.encode())
    secrets.put(athena_oauth_secret(customer), json.dumps(
        {"client_id": "local-chaos", "client_secret": "chaos"}).encode())
    FirestoreTenants(firestore_client()).upsert(customer, {"athena_practice_id": "195900"})
    url = manager.function_urls(stack.config)["athena_webhook"] + f"/{customer}"
    started = time.perf_counter()
    for number in range(events):
        if number == events // 3:
            stack.kill("ehr_fetcher")
        if number == 2 * events // 3:
            stack.restart()
        body = json.dumps({"resourceType": "Bundle", "type": "history", "entry": [{"resource": {
            "resourceType": "SubscriptionStatus", "type": "event-notification",
            "subscription": {"reference": "Subscription/claims-1"},
            "topic": "https://athenahealth.com/fhir/topic/Claim.update",
            "notificationEvent": [{"id": f"chaos-{number}", "eventNumber": str(number),
                                   "timestamp": datetime.now(UTC).isoformat(),
                                   "focus": {"identifier": {
                                       "system": "urn:athenahealth:athenanet:claim",
                                       "value": f"a-195900.claim-{30001 + number % 10}"}}}]
        }}]}).encode()
        mac = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        answer = requests.post(url, data=body, timeout=30,
                               headers={"X-Hub-Signature": f"sha256={mac}"})
        assert answer.status_code == 200, answer.text
    held = tenant_collection(firestore_client(), customer, "ehr_pending")

    def fetched() -> tuple[bool, str]:
        statuses = [str((d.to_dict() or {}).get("status")) for d in held.stream()]
        done = sum(s in ("fetched", "not_found", "voided", "unmappable") for s in statuses)
        return done >= events, f"{done} of {events} events resolved ({len(statuses)} held)"

    _, detail, _ = _wait("fetch", fetched, SETTLE_SECONDS)
    done = int(detail.split(" of ")[0])
    _record("fetch", f"ehr_fetcher: {detail}", max(events - done, 0), 0,
            time.perf_counter() - started)
    _record_aggregates("fetch", customer, started)


def scenario_runs(stack: Stack) -> None:
    """On the ingest scenario's year: the weekly run with the detectors killed mid-run, and
    the dispatcher down while the alerts are published."""
    from upstream.adapters.clients import firestore_client, publisher_client
    from upstream.adapters.firestore_alerts import FirestoreAlerts
    from upstream.adapters.firestore_store import FirestoreTenants, tenant_collection
    from upstream.events import DetectorRun

    print("\n[runs] weekly run: kill -9 detectors mid-run; alert_dispatcher down meanwhile")
    customer = "chaos-ingest"
    from upstream.domain.notify.routing import NotificationSettings

    FirestoreTenants(firestore_client()).upsert(customer, {
        "notifications": NotificationSettings.model_validate({"channels": [
            {"id": "billing", "kind": "email", "recipients": ["billing@chaos.example"],
             "min_severity": "HIGH"}]}).model_dump(mode="json")})
    alerts = FirestoreAlerts(firestore_client())
    stack.kill("alert_dispatcher")
    run = DetectorRun(run="weekly", customer=customer, as_of=date(2026, 1, 1))
    publisher = publisher_client()
    topic = publisher.topic_path(stack.config.project, "detector-runs")
    started = time.perf_counter()
    publisher.publish(topic, run.to_bytes()).result(timeout=30)
    time.sleep(1.5)
    stack.kill("detectors")
    time.sleep(3)
    stack.restart()  # both come back; the dispatcher's pushes were failing meanwhile

    def finished() -> tuple[bool, str]:
        record = alerts.get_run(customer, "weekly_2026-01-01") or {}
        return bool(record.get("finished_at")), f"run {record.get('status', 'not recorded')}"

    ok, detail, _ = _wait("run", finished, SETTLE_SECONDS)
    first = {a["alert_id"]: a.get("severity") for a in alerts.list(customer)}
    _record("runs", f"detectors: {detail}, {len(first)} alerts", 0 if ok else 1, 0,
            time.perf_counter() - started)
    # A second delivery of the same run must change nothing.
    publisher.publish(topic, run.to_bytes()).result(timeout=30)
    time.sleep(10)
    again = {a["alert_id"]: a.get("severity") for a in alerts.list(customer)}
    _record("runs", "detectors: the same run again", len(set(first) - set(again)),
            len(set(again) - set(first)), time.perf_counter() - started)
    wanted = {(alert_id, severity) for alert_id, severity in first.items()
              if severity in ("HIGH", "CRITICAL")}
    deliveries = tenant_collection(firestore_client(), customer, "deliveries")

    def delivered() -> tuple[bool, str]:
        sent = [d.to_dict() or {} for d in deliveries.stream()]
        ok_sent = [d for d in sent if d.get("status") == "delivered" and d.get("kind") == "email"]
        return len(ok_sent) >= len(wanted), f"{len(ok_sent)} of {len(wanted)} e-mails sent"

    ok, detail, _ = _wait("deliveries", delivered, SETTLE_SECONDS)
    mails = list((stack.config.mail_dir).glob("*.eml"))
    subjects = [m.read_text(errors="replace") for m in mails]
    per_alert = {alert_id: sum(alert_id in text for text in subjects) for alert_id, _ in wanted}
    doubled = sum(max(0, n - 1) for n in per_alert.values())
    lost = sum(1 for n in per_alert.values() if n == 0)
    _record("runs", f"alert_dispatcher: {detail}, {len(mails)} e-mails in the mailbox", lost,
            doubled, time.perf_counter() - started)


def scenario_emulators(stack: Stack) -> None:
    print("\n[emulators] Pub/Sub, then Firestore frozen 15 s mid-ingest")
    customer = "chaos-freeze"
    _tenant(stack.config, customer)
    data = _claims_file(21, LINES // 2)
    expected, _ = _expected_lines(data)
    started = time.perf_counter()
    _upload(stack.config, customer, data, "half-year.csv")
    time.sleep(2)
    stack.freeze("pubsub", 15)
    time.sleep(2)
    stack.freeze("firestore", 15)
    from upstream.adapters.clients import firestore_client
    from upstream.adapters.firestore_store import FirestoreRecords
    from upstream.domain.records import RecordKind

    records = FirestoreRecords(firestore_client())

    def stored() -> tuple[bool, str]:
        count = records.count(customer, RecordKind.CLAIMS)
        return count >= expected, f"{count:,} of {expected:,} lines stored"

    _, detail, _ = _wait("stored", stored, SETTLE_SECONDS)
    count = records.count(customer, RecordKind.CLAIMS)
    _record("emulators", f"file_ingest: {detail}", max(expected - count, 0),
            max(count - expected, 0), time.perf_counter() - started)
    _record_aggregates("emulators", customer, started)


SCENARIOS = {"ingest": scenario_ingest, "ehr": scenario_ehr, "fetch": scenario_fetch,
             "runs": scenario_runs, "emulators": scenario_emulators}


def main() -> int:
    os.environ["UPSTREAM_INGEST_LEASE_SECONDS"] = LEASE_SECONDS
    config = _config()
    os.environ.update(config.emulator_env())
    os.environ["UPSTREAM_SECRETS_FILE"] = str(config.secrets_file)
    from upstream.stack import manager

    chosen = os.environ.get("CHAOS_SCENARIOS", ",".join(SCENARIOS)).split(",")
    print(f"chaos: {', '.join(chosen)} on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"{os.cpu_count()} cores; upload lease {LEASE_SECONDS} s")
    started = time.perf_counter()
    try:
        manager.up(config)
        stack = Stack(config)
        for name in chosen:
            SCENARIOS[name](stack)
    finally:
        manager.down(config)
    print("\n| scenario | what | lost | doubled | settled (s) |\n|---|---|---|---|---|")
    for scenario, what, lost, doubled, seconds in RESULTS:
        print(f"| {scenario} | {what} | {lost} | {doubled} | {seconds:.0f} |")
    bad = sum(lost + doubled for _, _, lost, doubled, _ in RESULTS)
    print(f"\nchaos: {'PASS' if not bad else 'FAIL'}: {len(RESULTS)} checks, "
          f"{bad} lost or doubled, {time.perf_counter() - started:.0f} s")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
