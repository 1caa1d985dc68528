"""The monthly practice report by e-mail, on the first Monday of each month (Cloud Scheduler
publishes `{"report": "monthly", "customer": "*"}` every Monday at 13:00 UTC; cron cannot say
"the first Monday", so on any other Monday this does nothing). One message per practice,
each e-mail channel that takes the weekly summary gets the PDF and the CSV, once per month
(`monthly.<YYYY-MM>.<channel>` in the delivery ledger).
"""

from __future__ import annotations

import re
from datetime import date
from email.message import EmailMessage
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from upstream.domain.notify.monthly import MONTH, previous_month, to_csv
from upstream.domain.notify.routing import ChannelRule
from upstream.services.delivery import (
    LEASE_SECONDS,
    DispatchDeps,
    Outcomes,
    active_settings,
    deliver,
    require_smtp,
)
from upstream.services.monthly_report import monthly_report, report_html
from upstream.services.tenants import CUSTOMER_ID

FIRST_MONDAY_LAST_DAY = 7


class MonthlyRequest(BaseModel):
    """`{"report": "monthly", "customer": "*"|id, "month"?: "YYYY-MM", "day"?}`."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    report: Literal["monthly"]
    customer: str = Field(pattern=f"^(\\*|{CUSTOMER_ID})$")
    month: str | None = None
    day: date | None = None

    @field_validator("month")
    @classmethod
    def _month(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(MONTH, value):
            raise ValueError("month is YYYY-MM")
        return value


def _message(sender: str, channel: ChannelRule, practice: str, month: str, pdf: bytes,
             csv_text: str, dashboard_url: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"] = sender, ", ".join(channel.recipients)
    message["Subject"] = f"{practice}: Upstream report for {month}"
    message.set_content(
        f"The practice report for {month} is attached (PDF for reading, CSV for a "
        f"spreadsheet): denials by payer against the prior quarter, the alerts raised and "
        f"how useful they were, dollars recovered after alerts, authorizations renewed in "
        f"time, and automation.\n\nThe dashboard: {dashboard_url}\n")
    message.add_attachment(pdf, maintype="application", subtype="pdf",
                           filename=f"upstream-{month}.pdf")
    message.add_attachment(csv_text.encode(), maintype="text", subtype="csv",
                           filename=f"upstream-{month}.csv")
    return message


def send_monthly_report(request: MonthlyRequest, deps: DispatchDeps) -> dict[str, Any]:
    today = request.day or deps.clock().date()
    if request.customer == "*":
        if request.month is None and today.day > FIRST_MONDAY_LAST_DAY:
            return {"status": "not_the_first_monday"}
        ids = deps.tenant_ids.list_ids()
        month = request.month or previous_month(today)
        for customer in ids:
            one = request.model_copy(update={"customer": customer, "month": month})
            deps.publisher.publish(deps.alerts_topic, one.model_dump_json().encode(),
                                   {"customer_id": customer, "type": "monthly_report"})
        return {"status": "fanned_out", "tenants": len(ids)}
    customer, month = request.customer, request.month or previous_month(today)
    tenant, settings = active_settings(deps, customer)
    if tenant is None or settings is None or deps.monthly is None or deps.pdf is None:
        return {"status": "tenant_gone" if tenant is None else "settings_invalid"
                if settings is None else "no_sources"}
    channels = [c for c in settings.channels if c.kind == "email" and c.weekly_summary]
    if not channels:
        return {"status": "no_email_channel"}
    practice = str(tenant.get("name") or customer)
    report = monthly_report(customer, month, deps.monthly)
    pdf, csv_text = deps.pdf(report_html(report, practice)), to_csv(report)
    outcomes = Outcomes()
    for channel in channels:
        key = f"monthly.{month}.{channel.id}"
        if deps.deliveries.begin(customer, key, {"channel": channel.id, "kind": "email",
                                                 "report": month},
                                 deps.clock(), LEASE_SECONDS) != "deliver":
            outcomes.channels[channel.id] = "already"
            continue

        def send(c: ChannelRule = channel) -> None:
            smtp = require_smtp(deps)
            smtp.send(_message(smtp.sender, c, practice, month, pdf, csv_text,
                               deps.dashboard_url))

        deliver(deps, customer, key, channel.id, send, outcomes)
    outcomes.raise_if_retrying()
    return {"status": "monthly_report", "month": month, "channels": outcomes.channels}
