"""The `detectors` use-case: one `detector-runs` message → alerts for one tenant, or the fan-out.

`customer: "*"` (what Cloud Scheduler sends) republishes one message per tenant, so each
tenant's run is its own delivery: one tenant's failure (a corrupt aggregate) is retried and
dead-lettered on its own, and a large tenant never delays the others.

A tenant's run is idempotent: findings merge into the open alerts (deterministic ids), alerts
are written before they are published, and an alert's severity is published once (a crash
between write and publish is repaired by the redelivery, which finds it unpublished).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from upstream.domain.aggregates import AggregateFrame, build_frame
from upstream.domain.automation.tiers import ActionType, ProposedAction
from upstream.domain.detect import underpay
from upstream.domain.detect.authcal import EXPIRING, calendar
from upstream.domain.detect.authcal import status as auth_status
from upstream.domain.detect.findings import (
    NOISE_MEMORY_DAYS,
    Alert,
    AlertStatus,
    Finding,
    affected_filter,
    merge_into_alerts,
    with_affected_lines,
)
from upstream.domain.detect.runner import Schedule, lookback_start, run_findings
from upstream.domain.payer_behavior.fingerprint import PRIOR_DAYS, RECENT_DAYS
from upstream.domain.payer_behavior.report import payer_report
from upstream.domain.practice.fee_schedule import canonical_rows
from upstream.domain.risk.models import to_document
from upstream.domain.risk.rules import default_rules, with_overrides
from upstream.domain.risk.score import HISTORY_DAYS
from upstream.domain.risk.training import fit_for_tenant, training_rows
from upstream.domain.specialty.runner import specialty_findings
from upstream.events import CloudEventLike, DetectorRun
from upstream.logs import get_logger
from upstream.ports import (
    AggregateStore,
    AlertStore,
    AuthorizationSource,
    NetworkStore,
    PayerReportStore,
    ProcessingUploads,
    Publisher,
    ReconcileStore,
    TenantLister,
    TenantStore,
)
from upstream.services.alert_publishing import save_and_publish
from upstream.services.automation import AutomationDeps, propose
from upstream.services.dead_letters import decode_or_dead_letter
from upstream.services.network_detection import network_findings, network_payer_views
from upstream.services.recovery import self_check

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class DetectorDeps:
    tenants: TenantLister
    aggregates: AggregateStore
    alerts: AlertStore
    publisher: Publisher
    runs_topic: str
    alerts_topic: str
    authorizations: AuthorizationSource | None = None
    network: NetworkStore | None = None
    network_key: Callable[[], bytes | None] = lambda: None
    today: Callable[[], date] = lambda: datetime.now(UTC).date()
    automation: AutomationDeps | None = None
    tenants_store: TenantStore | None = None
    reconciler: ReconcileStore | None = None
    uploads: ProcessingUploads | None = None
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    payer_reports: PayerReportStore | None = None


def run_id(run: DetectorRun, as_of: date) -> str:
    return f"{run.run}_{as_of.isoformat()}"


def handle_run(run: DetectorRun, deps: DetectorDeps) -> dict[str, Any]:
    as_of = run.as_of or deps.today()
    if run.customer == "*":
        tenants = deps.tenants.list_ids()
        for customer in tenants:
            message = DetectorRun(run=run.run, customer=customer, as_of=as_of)
            deps.publisher.publish(deps.runs_topic, message.to_bytes(),
                                   {"customer_id": customer, "run": run.run})
        log.info("detector run fanned out", extra={"run": run.run, "tenants": len(tenants)})
        return {"status": "fanned_out", "tenants": len(tenants)}
    if run.run == "uploads":
        return watch_uploads(run.customer, deps)
    return run_tenant(run.customer, Schedule(run.run), as_of, deps)


# An upload's delivery holds a lease of 540 s and Eventarc redelivers for a day: one still
# `processing` an hour after it started has had about six chances to finish and did not.
STUCK_AFTER = timedelta(hours=1)


def watch_uploads(customer: str, deps: DetectorDeps) -> dict[str, Any]:
    """Logs each upload stuck in `processing` as an ERROR with `event: upload_stuck`, which a
    log-based metric counts and an alert policy pages on (infra/monitoring.tf)."""
    if deps.uploads is None:
        return {"customer_id": customer, "status": "skipped"}
    now = deps.now()
    stuck = [u for u in deps.uploads.processing(customer)
             if _started(u) is not None and now - _started(u) > STUCK_AFTER]  # type: ignore[operator]
    for upload in stuck:
        log.error("upload stuck processing", extra={
            "event": "upload_stuck", "customer_id": customer,
            "upload_id": upload.get("upload_id"), "started_at": str(upload.get("started_at")),
            "accepted_so_far": upload.get("accepted")})
    return {"customer_id": customer, "status": "watched", "stuck_uploads": len(stuck)}


def _started(upload: dict[str, Any]) -> datetime | None:
    value = upload.get("started_at")
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        stamp = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def run_tenant(customer: str, schedule: Schedule, as_of: date,
               deps: DetectorDeps) -> dict[str, Any]:
    """Raises on a corrupt aggregate: the delivery fails, is retried, then dead-lettered."""
    started = datetime.now(UTC)
    consistency = None
    if schedule is Schedule.WEEKLY and deps.reconciler is not None:
        # Contract 7: detectors must not read cells a lost change left wrong.
        consistency = self_check(customer, deps.reconciler)
    cells = deps.aggregates.cells(customer, lookback_start(as_of), as_of)
    frame = build_frame(cells, lookback_start(as_of), as_of)
    findings = run_findings(frame, as_of, schedule) + _calendar(customer, as_of, deps)
    findings += _contract(customer, schedule, frame, as_of, deps)
    findings += network_findings(
        customer, findings, frame, as_of, deps.network, deps.network_key,
        (as_of - lookback_start(as_of)).days if schedule is Schedule.WEEKLY else 0)
    findings += _specialty(customer, schedule, as_of, deps)
    _payer_report(customer, schedule, as_of, deps)
    findings = [_with_lines(customer, finding, deps) for finding in findings]
    existing = deps.alerts.recent(customer, as_of - timedelta(days=NOISE_MEMORY_DAYS))
    alerts = merge_into_alerts(customer, findings, existing, as_of)
    first = _first_run(customer, as_of, deps)  # later news of a first-run alert is told on its own
    alerts = [a.model_copy(update={"first_run": first}) for a in alerts]
    unpublished = save_and_publish(customer, alerts, {a.alert_id for a in existing},
                                   deps.alerts, deps.publisher, deps.alerts_topic)
    if first and deps.tenants_store is not None:
        deps.tenants_store.upsert(customer, {"first_detector_run": as_of.isoformat()})
        if unpublished:  # one e-mail for all of them, now rather than at tomorrow's digest
            by_id = {a.alert_id: a for a in alerts}
            deps.publisher.publish(deps.alerts_topic, json.dumps({
                "digest": "first_run", "customer": customer,
                "alerts": [[i, by_id[i].type, by_id[i].severity] for i in unpublished
                           if i in by_id]}).encode(),
                {"customer_id": customer, "type": "digest"})
    if deps.automation is not None:
        _propose_reauthorizations(customer, alerts, deps.automation)
    summary = {"customer_id": customer, "run": schedule.value, "as_of": as_of.isoformat(),
               "status": "complete", "payers": len(frame.payers), "findings": len(findings),
               "alerts_written": len(alerts), "alerts_published": len(unpublished),
               "kept_quiet_as_noise": sum(a.status is AlertStatus.NOISE for a in alerts),
               "started_at": started.isoformat(), "finished_at": datetime.now(UTC).isoformat()}
    if consistency is not None:
        summary["aggregates"] = consistency["status"]
        summary["cells_reconciled"] = consistency.get("cells_wrong", 0)
    deps.alerts.record_run(customer, run_id(DetectorRun(run=schedule.value, customer=customer),
                                            as_of), summary)
    log.info("detector run complete", extra=summary)
    return summary


def _first_run(customer: str, as_of: date, deps: DetectorDeps) -> bool:
    """The practice's first run over its history (its months of back data raise many alerts
    at once), marked on the tenant document with its day: a rerun of that day is that first
    run again (same alerts, same flag), a later day is not."""
    if deps.tenants_store is None:
        return False
    marked = (deps.tenants_store.get(customer) or {}).get("first_detector_run")
    return not marked or marked == as_of.isoformat()


def _with_lines(customer: str, finding: Finding, deps: DetectorDeps) -> Finding:
    wanted = affected_filter(finding)
    if wanted is None or deps.authorizations is None:
        return finding
    payer, first, end = wanted
    return with_affected_lines(finding, deps.authorizations.denied_lines(
        customer, payer, first, end))


YEAR_DAYS = 365


def _specialty(customer: str, schedule: Schedule, as_of: date,
               deps: DetectorDeps) -> list[Finding]:
    """Weekly, over the last year's lines (the KX threshold is a calendar-year total; the
    risk model learns from a year): the specialty checks, and the practice's calibrated risk
    model refitted and adopted only if its held-out check earns it. Only lines served before
    the run day count."""
    if schedule is not Schedule.WEEKLY or deps.authorizations is None:
        return []
    tenant = (deps.tenants_store.get(customer) if deps.tenants_store else None) or {}
    since = as_of - timedelta(days=YEAR_DAYS)
    lines = [line for line in deps.authorizations.lines_since(customer, since.isoformat())
             if str(line.get("service_date", "")) < as_of.isoformat()]
    rules = with_overrides(default_rules(), tenant.get("risk_rules"), tenant.get("state"))
    if deps.tenants_store is not None:
        cells = deps.aggregates.cells(customer, since - timedelta(days=HISTORY_DAYS), as_of)
        model, report = fit_for_tenant(training_rows(lines, cells, rules), as_of)
        deps.tenants_store.upsert(customer, {
            "risk_model": to_document(model) if model else None,
            "risk_model_report": report})
        log.info("risk model refitted", extra={"customer_id": customer, **report})
    return specialty_findings(lines, tenant, rules, as_of)


def _contract(customer: str, schedule: Schedule, frame: AggregateFrame, as_of: date,
              deps: DetectorDeps) -> list[Finding]:
    """Weekly: the practice's fee schedule against what its payers allowed."""
    if schedule is not Schedule.WEEKLY or deps.tenants_store is None:
        return []
    tenant = deps.tenants_store.get(customer) or {}
    if not tenant.get("fee_schedule"):
        return []
    rows = canonical_rows(tenant["fee_schedule"], tenant.get("payer_aliases"))
    return underpay.contract_findings(frame, as_of, rows)


def _payer_report(customer: str, schedule: Schedule, as_of: date, deps: DetectorDeps) -> None:
    """Weekly: each payer's fingerprint and archetype over the last year of aggregates, stored
    whole for the API and the dashboard (a rerun of the day writes the same report)."""
    if schedule is not Schedule.WEEKLY or deps.payer_reports is None:
        return
    first = as_of - timedelta(days=RECENT_DAYS + PRIOR_DAYS)
    frame = build_frame(deps.aggregates.cells(customer, first, as_of), first, as_of)
    report = payer_report(frame, as_of)
    key = deps.network_key() if deps.network is not None else None
    if key:  # the network's view of each payer, where at least 5 practices contribute
        views = network_payer_views(sorted(frame.payers), as_of, deps.network)
        for entry in report:
            if entry["payer"] in views:
                entry["network"] = views[entry["payer"]]
    deps.payer_reports.save_payer_report(customer, as_of, report)
    log.info("payer report saved", extra={
        "customer_id": customer, "payers": len(report),
        "archetypes": sorted({entry["archetype"] for entry in report})})


def _calendar(customer: str, as_of: date, deps: DetectorDeps) -> list[Finding]:
    """The authorization calendar runs on every schedule (daily is its own cadence), over the
    authorizations still live or recently ended, and only the claim lines linked to them."""
    if deps.authorizations is None:
        return []
    recent = (as_of - timedelta(days=31)).isoformat()
    auths = [a for a in deps.authorizations.authorizations(customer)
             if str(a.get("end_date", "")) >= recent
             and a.get("decision") not in ("denied", "pending")]  # requests, not grants
    if not auths:
        return []
    for auth in auths:  # ACTIVE → EXPIRING_SOON → EXPIRED, or RENEWED, on the document
        state = auth_status(auth, auths, as_of).value
        if auth.get("status") != state:
            deps.authorizations.set_authorization_status(
                customer, str(auth["authorization_number"]), state)
    numbers = sorted({str(a["authorization_number"]) for a in auths})
    patients = sorted({str(a["patient_key"]) for a in auths if a.get("patient_key")})
    lines = deps.authorizations.lines_for_authorizations(customer, numbers, patients)
    return calendar(auths, lines, as_of)


def handle_run_event(event: CloudEventLike, deps: DetectorDeps) -> dict[str, Any]:
    run = decode_or_dead_letter(event, DetectorRun.from_cloud_event, deps.publisher,
                                deps.runs_topic, "malformed_detector_run")
    if run is None:
        return {"status": "dead_lettered"}
    return handle_run(run, deps)


# A re-authorization request is prepared from the calendar's facts: deterministic paperwork,
# so its confidence is high; the money at stake (revenue at risk) decides whether a biller
# reviews it first.
REAUTH_CONFIDENCE = 99


def _propose_reauthorizations(customer: str, alerts: list[Alert],
                              automation: AutomationDeps) -> None:
    """Each expiring authorization gets one prepared re-authorization request (the action id
    is per authorization and end date, so later runs propose nothing new)."""
    for alert in alerts:
        if EXPIRING not in alert.metrics.get("problems", [alert.type]) \
                or alert.status is not AlertStatus.OPEN:
            continue
        facts = dict(alert.evidence.get("authorization") or {})
        if not facts.get("authorization_number"):
            continue
        at_risk = float(alert.metrics.get("revenue_at_risk_dollars") or 0)
        propose(ProposedAction(
            customer_id=customer, action_type=ActionType.REAUTH_REQUEST,
            target=f"auth:{facts['authorization_number']}", confidence=REAUTH_CONFIDENCE,
            dollars_cents=max(0, round(at_risk * 100)),
            details=facts, identity=f"{facts['authorization_number']}|{facts.get('end_date')}",
            reason=f"authorization ends {facts.get('end_date')}"), automation)
