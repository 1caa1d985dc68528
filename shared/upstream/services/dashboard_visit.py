"""A signed-in dashboard request and what every signed-in page shows around its content (the
practice, who is signed in, the CSRF token, what they may do)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from upstream.domain.practice.people import Principal
from upstream.services.web_pages import WebRequest

STATUS_LABELS = {"open": "Open", "acknowledged": "Acknowledged — being worked",
                 "noise": "Marked noise", "resolved": "Resolved"}
ACTION_LABELS = {"acknowledge": "Acknowledge", "noise": "Not useful (noise)",
                 "resolve": "Mark resolved", "reopen": "Reopen"}
DONE = {"acknowledge": "Acknowledged", "noise": "Marked as noise: the same finding will stay "
        "quiet unless it gets worse", "resolve": "Marked resolved", "reopen": "Reopened",
        "approve": "Approved and done", "release-hold": "Hold released; your reason is logged",
        "saved": "Settings saved", "test-sent": "Test sent: it arrives within a minute; a "
        "failure shows under Deliveries on the overview"}


@dataclass(frozen=True, slots=True)
class Visit:
    """A signed-in request: who (a person or a key's session), its CSRF token, its form."""

    request: WebRequest
    principal: Principal
    csrf: str
    form: dict[str, str]
    now: datetime
    practice: str


def common(visit: Visit) -> dict[str, Any]:
    person = visit.principal.is_person
    return {"practice": visit.practice, "csrf": visit.csrf,
            "can_write": visit.principal.may("write"), "is_admin": visit.principal.may("admin"),
            "who": visit.principal.actor.partition(":")[2] if person else "an access key",
            "role": visit.principal.role if person else f"{visit.principal.role} key",
            "labels": {"status": STATUS_LABELS, "action": ACTION_LABELS},
            "flash": DONE.get(visit.request.query.get("done", ""))}
