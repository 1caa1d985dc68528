"""Writing one access audit entry (Contract 6), shared by the JSON API and the dashboard so
both record the same fields the same way. Returns False when the entry could not be written:
the caller then refuses to answer (no access unrecorded)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from upstream.domain import audit
from upstream.logs import get_logger
from upstream.services.webhooks import INFRASTRUCTURE

log = get_logger(__name__)


class AuditLog(Protocol):
    def append_audit(self, customer: str, entry: dict[str, Any]) -> None: ...


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


def record(log_to: AuditLog, customer: str, *, at: datetime, actor: str, role: str,
           action: str, resource_path: str, outcome: int, headers: Mapping[str, str],
           client_ip: str | None) -> bool:
    forwarded = _header(headers, "x-forwarded-for")
    try:
        log_to.append_audit(customer, audit.entry(
            at=at, actor=actor, role=role, action=action, resource_path=resource_path,
            outcome=outcome, ip=forwarded.split(",")[0].strip() if forwarded else client_ip,
            user_agent=_header(headers, "user-agent")))
    except INFRASTRUCTURE as exc:
        log.error("audit entry could not be written", extra={
            "customer_id": customer, "action": action, "error": type(exc).__name__})
        return False
    return True
