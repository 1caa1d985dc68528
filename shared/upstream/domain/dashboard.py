"""What the dashboard shows, from stored documents: pure, so every number on the page is
tested without a browser. The page answers the director's 5-minute daily check in the order
she asks: what is wrong now (open alerts), is it getting worse (trends per payer), what will
go wrong next (the authorization calendar), did our data arrive (uploads, failed deliveries).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from upstream.domain.aggregates import DailyCell
from upstream.domain.detect.authcal import AuthStatus
from upstream.domain.detect.authcal import status as auth_status
from upstream.domain.detect.findings import DENIAL_TYPES, SEVERITY_ORDER, Severity
from upstream.domain.notify import chart
from upstream.domain.notify.render import metric_rows, sections

# Payers charted: the busiest ones. A 5–25-provider practice bills a handful of payers that
# carry almost all of its volume; a long tail of charts would bury them.
CHARTED_PAYERS = 8
# Metrics on an alert's card; the rest are one click away on its own page.
CARD_METRICS = 4
# The calendar's buckets: the seeds' 30/14/3-day reminders, then the rest.
EXPIRY_BUCKETS = ((3, "Expires within 3 days"), (14, "Expires within 14 days"),
                  (30, "Expires within 30 days"))
# Expired authorizations stay on the calendar this long: sessions given after expiry are
# still being billed (and denied) for weeks.
EXPIRED_SHOWN_DAYS = 60


@dataclass(frozen=True, slots=True)
class AlertCard:
    alert_id: str
    severity: str
    status: str
    title: str
    summary: str
    payer: str
    first_seen: str
    last_seen: str
    metrics: list[tuple[str, str]]
    sections: list[tuple[str, list[str], list[list[str]]]]
    actions: list[str]
    history: list[dict[str, str]]
    suppressed: int


def alert_card(alert: Mapping[str, Any]) -> AlertCard:
    document = dict(alert)
    status = str(document.get("status") or "open")
    return AlertCard(
        alert_id=str(document.get("alert_id", "")), severity=str(document.get("severity", "")),
        status=status, title=str(document.get("title", "")),
        summary=str(document.get("summary", "")), payer=str(document.get("payer") or ""),
        first_seen=str(document.get("first_seen", "")),
        last_seen=str(document.get("last_seen", "")),
        metrics=metric_rows(document)[:CARD_METRICS], sections=sections(document),
        actions=actions_for(status),
        history=[{k: str(v or "") for k, v in entry.items()}
                 for entry in document.get("history") or [] if isinstance(entry, dict)],
        suppressed=int(document.get("suppressed") or 0))


def actions_for(status: str) -> list[str]:
    """The buttons an alert in this state offers (the API's action names)."""
    if status == "open":
        return ["acknowledge", "noise", "resolve"]
    if status == "acknowledged":
        return ["resolve", "noise", "reopen"]
    return ["reopen"]


def _severity_rank(alert: Mapping[str, Any]) -> int:
    try:
        return SEVERITY_ORDER[Severity(str(alert.get("severity")))]
    except ValueError:
        return -1


def order_alerts(alerts: Iterable[Mapping[str, Any]]) -> list[AlertCard]:
    """Worst first, then the most recently seen (two stable sorts)."""
    ranked = sorted(alerts, key=lambda a: (str(a.get("last_seen", "")),
                                           str(a.get("alert_id", ""))), reverse=True)
    ranked.sort(key=_severity_rank, reverse=True)
    return [alert_card(a) for a in ranked]


@dataclass(frozen=True, slots=True)
class PayerTrend:
    payer: str
    decided: int
    last_rate: float | None
    baseline_rate: float | None
    last_lag_days: float | None
    denial_chart: str | None  # data: URI of the PNG
    lag_chart: str | None
    alert_weeks: int
    alert_id: str | None = None  # the payer's latest denial alert: the card links to it
    baseline_from_alert: bool = False


def data_uri(png: bytes | None) -> str | None:
    return "data:image/png;base64," + base64.b64encode(png).decode() if png else None


def alert_markers(alerts: Iterable[Mapping[str, Any]], payer: str,
                  points: Sequence[chart.WeekPoint]) -> list[int]:
    """Indexes of the weeks whose data raised an alert on this payer: the last day of the
    alert's current window (a Monday run alerts on the week before it, which a run-day
    marker would put one week past the chart)."""
    if not points:
        return []
    first = points[0].start
    found = set()
    for alert in alerts:
        window = alert.get("window") if isinstance(alert.get("window"), Mapping) else {}
        seen = (window or {}).get("current_end") or alert.get("first_seen")
        if alert.get("payer") != payer or not seen:
            continue
        try:
            day = date.fromisoformat(str(seen)[:10])
            if not (window or {}).get("current_end"):
                day -= timedelta(days=1)  # a run day: its data ends the day before
            index = (day - first).days // 7
        except ValueError:
            continue
        if 0 <= index < len(points):
            found.add(index)
    return sorted(found)


def payer_trends(cells: Sequence[DailyCell], alerts: Sequence[Mapping[str, Any]],
                 as_of: date, limit: int = CHARTED_PAYERS) -> list[PayerTrend]:
    """The busiest payers' 13-week denial rate (band, alert weeks) and payment lag."""
    volume: dict[str, float] = {}
    for cell in cells:
        volume[cell.payer] = volume.get(cell.payer, 0.0) + float(
            cell.counters.get("decided", 0) or 0)
    busiest = sorted((p for p, v in volume.items() if v > 0), key=lambda p: (-volume[p], p))
    trends = []
    for payer in busiest[:limit]:
        points = chart.weekly_points(cells, payer, as_of)
        markers = alert_markers(alerts, payer, points)
        lags = chart.weekly_lag(cells, payer, as_of)
        latest = _latest_payer_alert(alerts, payer)
        detector_baseline = _number((latest or {}).get("metrics", {}).get("baseline_rate"))
        baseline = detector_baseline if detector_baseline is not None \
            else chart.baseline_rate(points)
        trends.append(PayerTrend(
            payer=payer, decided=int(sum(p.decided for p in points)),
            last_rate=points[-1].rate, baseline_rate=baseline,
            last_lag_days=next((v for v in reversed(lags) if v is not None), None),
            denial_chart=data_uri(chart.render_png(points, markers, detector_baseline)),
            lag_chart=data_uri(chart.render_lag_png(points, lags)),
            alert_weeks=len(markers), alert_id=(latest or {}).get("alert_id"),
            baseline_from_alert=detector_baseline is not None))
    return trends


def _latest_payer_alert(alerts: Iterable[Mapping[str, Any]],
                        payer: str) -> Mapping[str, Any] | None:
    """The payer's most recent open denial alert on the payer as a whole."""
    own = [a for a in alerts if a.get("payer") == payer and a.get("scope") == "payer"
           and a.get("type") in DENIAL_TYPES and a.get("status", "open") == "open"
           and isinstance(a.get("metrics"), Mapping)]
    return max(own, key=lambda a: str(a.get("last_seen") or a.get("created_at") or ""),
               default=None)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else None


@dataclass(frozen=True, slots=True)
class CalendarRow:
    authorization_number: str
    payer: str
    patient_key: str
    service_type: str
    start_date: str
    end_date: str
    days_left: int
    units: str
    renewable: bool


@dataclass(slots=True)
class CalendarGroup:
    title: str
    tone: str  # "danger", "warning", "ok", "muted": the colour a non-technical reader scans
    ending_soon: bool = False  # one of the 30/14/3-day buckets
    rows: list[CalendarRow] = field(default_factory=list)


def _units(auth: Mapping[str, Any]) -> str:
    used, authorized = auth.get("units_used"), auth.get("units_authorized")
    if authorized in (None, ""):
        return ""
    shown = "–" if used in (None, "") else f"{float(used):g}"  # unknown is not zero
    return f"{shown} / {float(authorized):g}"


def _normalised(auth: Mapping[str, Any]) -> dict[str, Any] | None:
    """Dates as dates (a start defaults to the end); None for an unreadable end date."""
    try:
        end = date.fromisoformat(str(auth.get("end_date"))[:10])
        start = date.fromisoformat(str(auth.get("start_date") or end)[:10])
    except ValueError:
        return None
    return {**auth, "start_date": start, "end_date": end}


def auth_calendar(auths: Sequence[Mapping[str, Any]], as_of: date) -> list[CalendarGroup]:
    """Expired (recently), within 3/14/30 days, active, renewed: the seeds' calendar."""
    groups = {"expired": CalendarGroup("Expired", "danger"),
              **{str(days): CalendarGroup(title, "danger" if days <= 3 else "warning", True)
                 for days, title in EXPIRY_BUCKETS},
              "active": CalendarGroup("Active", "ok"),
              "renewed": CalendarGroup("Renewed", "muted")}
    usable = [n for n in (_normalised(a) for a in auths) if n is not None
              and n.get("decision") not in ("denied", "pending")]  # requests, not grants
    for auth in usable:
        end = auth["end_date"]
        renewed = str(auth.get("status")) == AuthStatus.RENEWED or auth_status(
            auth, usable, as_of) is AuthStatus.RENEWED
        days_left = (end - as_of).days
        if renewed:
            if days_left < -EXPIRED_SHOWN_DAYS:
                continue  # renewed long ago: history, not the calendar
            bucket = "renewed"
        elif days_left < 0:
            if days_left < -EXPIRED_SHOWN_DAYS:
                continue
            bucket = "expired"
        else:
            bucket = next((str(d) for d, _ in EXPIRY_BUCKETS if days_left <= d), "active")
        groups[bucket].rows.append(CalendarRow(
            authorization_number=str(auth.get("authorization_number", "")),
            payer=str(auth.get("payer", "")), patient_key=str(auth.get("patient_key") or ""),
            service_type=str(auth.get("service_type") or ""),
            start_date=auth["start_date"].isoformat(), end_date=end.isoformat(),
            days_left=days_left, units=_units(auth), renewable=bucket != "renewed"))
    for group in groups.values():
        group.rows.sort(key=lambda r: (r.end_date, r.authorization_number))
    return list(groups.values())


@dataclass(frozen=True, slots=True)
class UploadRow:
    name: str
    kind: str
    status: str
    received: str
    rows: int
    accepted: int
    rejected: int
    message: str


def upload_rows(uploads: Iterable[Mapping[str, Any]]) -> list[UploadRow]:
    found = []
    for upload in uploads:
        name = str(upload.get("object") or upload.get("upload_id") or "")
        found.append(UploadRow(
            name=name.rsplit("/", 1)[-1], kind=str(upload.get("kind") or ""),
            status=str(upload.get("status") or ""),
            received=str(upload.get("started_at") or "")[:16].replace("T", " "),
            rows=int(upload.get("rows") or 0), accepted=int(upload.get("accepted") or 0),
            rejected=int(upload.get("rejected") or 0), message=str(upload.get("message") or "")))
    return found


def delivery_problems(deliveries: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Deliveries whose last attempt failed: the channel, how often it was tried, and why.
    After five deliveries the message is in the dead-letter topic; the page says so."""
    found = []
    for delivery in deliveries:
        if delivery.get("status") != "failed":
            continue
        attempts = len(delivery.get("attempts") or [])
        found.append({"alert_id": str(delivery.get("alert_id", "")),
                      "channel": str(delivery.get("channel", "")),
                      "attempts": str(attempts), "error": str(delivery.get("error") or ""),
                      "when": str(delivery.get("updated_at") or "")[:16].replace("T", " ")})
    return sorted(found, key=lambda d: d["when"], reverse=True)


@dataclass(frozen=True, slots=True)
class Counts:
    open: int
    acknowledged: int
    noise: int
    suppressed: int


def counts(by_status: Mapping[str, Sequence[Mapping[str, Any]]]) -> Counts:
    noise = by_status.get("noise", [])
    return Counts(open=len(by_status.get("open", [])),
                  acknowledged=len(by_status.get("acknowledged", [])), noise=len(noise),
                  suppressed=sum(int(a.get("suppressed") or 0) for a in noise))


def as_of_day(last_run: date | None, today: date) -> date:
    """The day the page describes: the last detector run's, so the charts and the alerts
    agree; today if there was none."""
    return last_run or today



def action_rows(actions: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Automation actions as the decisions table shows them, whatever a document lacks."""
    rows = []
    for action in actions:
        details: dict[str, Any] = action["details"] if isinstance(action.get("details"),
                                                                  dict) else {}
        reasons = action.get("tier_reasons")
        rows.append({
            "action_id": str(action.get("action_id", "")),
            "what": str(action.get("action_type", "")).replace("_", " ")
            + (f" {details['modifier']}" if details.get("modifier") else ""),
            "target": str(action.get("target", "")),
            "why": "; ".join(str(r) for r in reasons) if isinstance(reasons, list)
            else str(action.get("reason") or ""),
            "reason": str(action.get("reason") or ""),
            "confidence": int(action.get("confidence") or 0),
            "dollars_cents": int(action.get("dollars_cents") or 0)})
    return rows
