"""Detector findings and the alerts they become (DESIGN Contract 4).

A detector run yields `Finding`s; `merge_into_alerts` turns them into alerts against what is
already open, so that one problem is one alert: a rerun of the same day, a second day of the
same episode, or another method (weekly test, daily CUSUM) seeing the same payer updates the
open alert instead of adding one. `alert_id` is a hash of customer, type, scope and the day the
episode opened, so the same history replayed gives the same ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from upstream.domain.codes import cdt


class Severity(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


SEVERITY_ORDER = {s: i for i, s in enumerate(Severity)}


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    NOISE = "noise"


# An episode whose last sighting is older than two weekly runs is over: a later finding for the
# same scope is a new problem, not the same one dragging on.
EPISODE_GAP_DAYS = 14
# A "noise" mark keeps its scope quiet for one baseline length (13 weeks) after its last
# sighting: by then the baseline the detector compares against holds none of the data the
# person judged, so a finding is a new question for them.
NOISE_MEMORY_DAYS = 7 * 13


class Window(BaseModel):
    model_config = ConfigDict(frozen=True)
    baseline_start: date | None = None
    baseline_end: date | None = None
    current_start: date
    current_end: date


class Finding(BaseModel):
    """What one detector saw in one scope on one run."""

    model_config = ConfigDict(frozen=True)
    type: str
    payer: str | None
    scope: str  # "payer", "cpt:97153", "carc:CO-197", "auth:<number>", …
    severity: Severity
    title: str
    summary: str
    method: str
    metrics: dict[str, Any] = Field(default_factory=dict)
    evidence: dict[str, Any] = Field(default_factory=dict)
    recommended_actions: list[str] = Field(default_factory=list)
    window: Window

    @property
    def episode_key(self) -> tuple[str, str, str]:
        return episode_key(self.type, self.payer, self.scope)


def episode_key(kind: str, payer: str | None, scope: str) -> tuple[str, str, str]:
    """What makes two findings one thing to do. An authorization is one episode whatever is
    wrong with it (ending, running out of units, used beyond them): the biller acts on the
    authorization, so the alert's type and severity follow the worst problem of the day."""
    if scope.startswith("auth:"):
        return "authorization", payer or "", scope
    if kind in DENIAL_TYPES:  # a denial rate and denied dollars moving together: one cause
        return "denials", payer or "", scope
    return kind, payer or "", scope


class Alert(BaseModel):
    """Contract 4, plus the episode bookkeeping (`first_seen`, `last_seen`, `methods`)."""

    alert_id: str
    customer_id: str
    type: str
    severity: Severity
    payer: str | None
    scope: str
    title: str
    summary: str
    metrics: dict[str, Any]
    evidence: dict[str, Any]
    recommended_actions: list[str]
    window: Window
    created_at: date
    first_seen: date
    last_seen: date
    methods: list[str]
    status: AlertStatus = AlertStatus.OPEN
    # Days on which a finding this alert's noise mark kept quiet, and the last of them.
    suppressed: int = 0
    last_suppressed: date | None = None
    # Raised by the practice's first run over its history: told in one summary, not one by one.
    first_run: bool = False

    @property
    def episode_key(self) -> tuple[str, str, str]:
        return episode_key(self.type, self.payer, self.scope)

    def to_document(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


AFFECTED_LINES = 25  # enough to start working the problem; the API pages through the rest
AFFECTED_FIELDS = ("claim_id", "line", "patient_key", "cpt", "modifiers", "carc_codes",
                   "billed_cents", "service_date", "decided_date", "outcome", "line_key")
# Finding types whose evidence lists the denied lines behind them.
DENIAL_TYPES = frozenset({"denial_rate_drift", "denial_dollar_spike"})


def affected_filter(finding: Finding) -> tuple[str, str, str] | None:
    """(payer, first day, end day) of the denied lines behind a finding, if it has any."""
    if finding.type not in DENIAL_TYPES or finding.payer is None:
        return None
    return (finding.payer, finding.window.current_start.isoformat(),
            (finding.window.current_end + timedelta(days=1)).isoformat())


def with_affected_lines(finding: Finding, lines: Iterable[dict[str, Any]]) -> Finding:
    """The finding with the denied lines of its scope (patient keys only, never names),
    largest first. `lines` are the payer's denied lines of the window."""
    scope_kind, _, code = finding.scope.partition(":")
    chosen = [line for line in lines
              if scope_kind == "payer" or (scope_kind == "cpt" and line.get("cpt") == code)
              or (scope_kind == "carc" and code in (line.get("carc_codes") or []))
              or (scope_kind == "family" and cdt.family(line.get("cpt")) == code)]
    chosen.sort(key=lambda line: (-(line.get("billed_cents") or 0), str(line.get("claim_id"))))
    rows = [{field: line.get(field) for field in AFFECTED_FIELDS}
            for line in chosen[:AFFECTED_LINES]]
    return finding.model_copy(update={"evidence": {
        **finding.evidence, "affected_lines": rows, "affected_lines_total": len(chosen)}})


def alert_id(customer_id: str, finding: Finding, opened: date) -> str:
    raw = "\x1f".join((customer_id, *finding.episode_key, opened.isoformat()))
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def _kept_quiet(alert: Alert, run_day: date) -> Alert:
    """A noise alert that silenced a finding today (counted once per day: reruns are free)."""
    if alert.last_suppressed == run_day:
        return alert
    return alert.model_copy(update={"suppressed": alert.suppressed + 1,
                                    "last_suppressed": run_day,
                                    "last_seen": max(alert.last_seen, run_day)})


def merge_into_alerts(customer_id: str, findings: Iterable[Finding], existing: Iterable[Alert],
                      run_day: date) -> list[Alert]:
    """The alerts to write (new or updated) for this run's findings. Several findings for one
    scope in one run (weekly test and CUSUM) fold into one alert at the highest severity.

    Feedback: an alert marked noise silences the same finding (type, payer, scope) at the same
    or a lower severity for `NOISE_MEMORY_DAYS` after its last sighting; each silenced day is
    counted on it (`suppressed`) and extends its memory. A worse finding is a new alert: the
    person judged the problem at the size they saw. A resolved alert silences nothing."""
    recent = {a.episode_key: a for a in sorted(existing, key=lambda a: a.last_seen)
              if a.last_seen >= run_day - timedelta(days=EPISODE_GAP_DAYS)
              or (a.status is AlertStatus.NOISE
                  and a.last_seen >= run_day - timedelta(days=NOISE_MEMORY_DAYS))}
    written: dict[tuple[str, str, str], Alert] = {}
    for finding in sorted(findings, key=lambda f: SEVERITY_ORDER[f.severity], reverse=True):
        key = finding.episode_key
        current = written.get(key) or recent.get(key)
        if current is not None and current.status is AlertStatus.NOISE:
            worse = SEVERITY_ORDER[finding.severity] > SEVERITY_ORDER[current.severity]
            if not worse or alert_id(customer_id, finding, run_day) == current.alert_id:
                written[key] = _kept_quiet(current, run_day)
                continue
            current = None
        if current is not None and current.status is not AlertStatus.RESOLVED:
            severity = max(current.severity, finding.severity, key=SEVERITY_ORDER.__getitem__)
            if key in written:  # a second method in the same run: the first's numbers lead,
                methods = sorted({*current.methods, finding.method})  # the others follow
                also = [*current.evidence.get("also_found", []), {
                    "title": finding.title, "method": finding.method,
                    "metrics": {k: v for k, v in finding.metrics.items()
                                if isinstance(v, (int, float, str)) or v is None}}]
                written[key] = current.model_copy(update={
                    "severity": severity, "methods": methods,
                    "evidence": {**current.evidence, "also_found": also}})
                continue
            written[key] = current.model_copy(update={
                "severity": severity, "type": finding.type, "title": finding.title,
                "summary": finding.summary,
                "metrics": finding.metrics, "evidence": finding.evidence,
                "recommended_actions": finding.recommended_actions, "window": finding.window,
                "last_seen": max(current.last_seen, run_day),
                "methods": sorted({*current.methods, finding.method})})
            continue
        written[key] = Alert(
            alert_id=alert_id(customer_id, finding, run_day), customer_id=customer_id,
            type=finding.type, severity=finding.severity, payer=finding.payer,
            scope=finding.scope, title=finding.title, summary=finding.summary,
            metrics=finding.metrics, evidence=finding.evidence,
            recommended_actions=finding.recommended_actions, window=finding.window,
            created_at=run_day, first_seen=run_day, last_seen=run_day, methods=[finding.method])
    return list(written.values())
