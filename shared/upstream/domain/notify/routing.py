"""A tenant's notification rules and what they make of one alert.

Rules live in the tenant document (`notifications`), one per channel: its kind (e-mail,
Slack, webhook), the lowest severity it wants, the alert types it wants (none listed: all),
real-time or the daily digest, and quiet hours in the practice's time zone. During quiet
hours a real-time channel gets only CRITICAL alerts; the rest wait for the next digest. That
is the seeds' promise (the 5-minute daily check) without a 2 a.m. e-mail about a MEDIUM drift.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

SEVERITY_ORDER = {"LOW": 0, "MEDIUM": 1, "HIGH": 2, "CRITICAL": 3}
Severity = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
_EMAIL = re.compile(r"^[^@\s<>\"',;]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_CHANNEL_ID = r"^[a-z0-9][a-z0-9-]{0,39}$"


class QuietHours(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end  # across midnight


class ChannelRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str = Field(pattern=_CHANNEL_ID)
    kind: Literal["email", "slack", "webhook"]
    min_severity: Severity = "MEDIUM"
    types: tuple[str, ...] = ()
    mode: Literal["realtime", "digest"] = "realtime"
    quiet_hours: QuietHours | None = None
    # email: the addresses; slack and webhook: nothing here (their URL is a secret,
    # `slack-webhook-<customer>-<id>` / `outbound-webhook-<customer>-<id>`).
    recipients: tuple[str, ...] = ()
    url: str | None = None  # webhook target (the secret signs, the URL is not secret)
    weekly_summary: bool = True  # e-mail channels also get the Monday summary

    @field_validator("recipients")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [a for a in value if not _EMAIL.match(a)]
        if bad:
            raise ValueError(f"not e-mail addresses: {bad[:3]}")
        return value

    @field_validator("url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s]+$", value):
            raise ValueError("the webhook URL must be http(s)")
        return value


# A billing office works about two alerts a day; beyond ten in a week the lower severities
# wait for the digest, so the ones that arrive are read (CRITICAL always goes at once).
DEFAULT_WEEKLY_BUDGET = 10


class NotificationSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    timezone: str = "America/New_York"
    channels: tuple[ChannelRule, ...] = ()
    weekly_alert_budget: int = Field(DEFAULT_WEEKLY_BUDGET, ge=1, le=1000)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("channels")
    @classmethod
    def _unique(cls, value: tuple[ChannelRule, ...]) -> tuple[ChannelRule, ...]:
        ids = [c.id for c in value]
        if len(ids) != len(set(ids)):
            raise ValueError("channel ids must be unique")
        for channel in value:
            if channel.kind == "email" and not channel.recipients:
                raise ValueError(f"e-mail channel {channel.id} has no recipients")
            if channel.kind == "webhook" and not channel.url:
                raise ValueError(f"webhook channel {channel.id} has no url")
        return value


@dataclass(frozen=True, slots=True)
class Planned:
    channel: ChannelRule
    when: Literal["now", "digest"]
    reason: str


def plan(alert_type: str, severity: str, settings: NotificationSettings,
         now: datetime) -> list[Planned]:
    """The channels this alert goes to, now or in the next digest."""
    local = now.astimezone(ZoneInfo(settings.timezone)).time()
    rank = SEVERITY_ORDER.get(severity, -1)
    planned = []
    for channel in settings.channels:
        if rank < SEVERITY_ORDER[channel.min_severity]:
            continue
        if channel.types and alert_type not in channel.types:
            continue
        if channel.mode == "digest":
            planned.append(Planned(channel, "digest", "digest channel"))
        elif channel.quiet_hours and channel.quiet_hours.contains(local) \
                and severity != "CRITICAL":
            planned.append(Planned(channel, "digest", "quiet hours"))
        else:
            planned.append(Planned(channel, "now", "real time"))
    return planned


def week_start(now: datetime, settings: NotificationSettings) -> datetime:
    """Monday 00:00 in the practice's time zone: the budget's week."""
    local = now.astimezone(ZoneInfo(settings.timezone))
    monday = (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0,
                                                               microsecond=0)
    return monday


def first_run_to_digest(planned: list[Planned], alert: dict[str, Any]) -> list[Planned]:
    """The first run over a practice's history raises its backlog at once: every finding goes
    into one summary (the digest the run requests) instead of an e-mail each."""
    if not alert.get("first_run"):
        return planned
    return [Planned(p.channel, "digest", "first run over the practice's history")
            if p.when == "now" else p for p in planned]


def within_budget(planned: list[Planned], severity: str, sent_this_week: int,
                  settings: NotificationSettings) -> list[Planned]:
    """Beyond the practice's weekly budget of alerts sent at once, what is not CRITICAL goes
    to the digest instead (with the reason), never nowhere."""
    if severity == "CRITICAL" or sent_this_week < settings.weekly_alert_budget:
        return planned
    reason = f"weekly alert budget ({settings.weekly_alert_budget}) reached"
    return [Planned(p.channel, "digest", reason) if p.when == "now" else p for p in planned]


ESCALATION_TYPE = "automation_escalation"
ESCALATION_CHANNEL = "escalation"


def escalation_plan(alert: dict[str, Any]) -> list[Planned]:
    """An automation escalation also goes, now, to the practice's escalation contacts (from
    its automation settings, carried in the alert): the person with authority to decide."""
    if alert.get("type") != ESCALATION_TYPE:
        return []
    evidence = alert.get("evidence") if isinstance(alert.get("evidence"), dict) else {}
    contacts = tuple(c for c in (evidence or {}).get("escalate_to") or []
                     if isinstance(c, str) and "@" in c and not any(x in c for x in " \r\n<>,;"))
    if not contacts:
        return []
    channel = ChannelRule(id=ESCALATION_CHANNEL, kind="email", min_severity="LOW",
                          recipients=contacts[:20], weekly_summary=False)
    return [Planned(channel, "now", "escalation contacts")]
