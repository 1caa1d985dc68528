"""The access audit entry (DESIGN Contract 6): who read or changed what, when, from where, and
how it ended. HIPAA's Security Rule asks for audit controls (45 CFR 164.312(b)) and keeps such
records six years (164.316(b)(2)).

An entry never holds PHI itself: the resource is the route's template with only the ids that
are ours (alert, action, upload and topic ids); any other path value (an authorization
number is a payer's identifier for a patient's care) is left as its placeholder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

# Path parameters whose values Upstream made up itself: safe to keep in an audit entry.
OUR_IDS = frozenset({"alert_id", "action_id", "upload_id", "topic", "action"})
RETENTION_YEARS = 6
_UNSAFE = re.compile(r"[^A-Za-z0-9._:@/<>\-]")
MAX_TEXT = 200
# Entry ids: the instant (so ids sort by time and pages are stable), then randomness (so two
# entries of one instant never collide). Page tokens are checked against it.
ENTRY_ID = re.compile(r"\d{8}T\d{12}-[0-9a-f]{12}")


def entry_id(at: datetime, random_hex: str) -> str:
    return f"{at.strftime('%Y%m%dT%H%M%S%f')}-{random_hex[:12]}"


def resource(template: str, args: Mapping[str, str]) -> str:
    """`/v1/alerts/<alert_id>` with its id; `/v1/authorizations/<number>/renewed` as is."""
    path = template
    for name, value in args.items():
        if name in OUR_IDS:
            path = path.replace(f"<{name}>", _UNSAFE.sub("_", str(value))[:MAX_TEXT])
    return path


def entry(*, at: datetime, actor: str, role: str, action: str, resource_path: str,
          outcome: int, ip: str | None, user_agent: str | None) -> dict[str, Any]:
    """One append-only entry. Text from the request (user agent) is cut to a length and
    holds whatever the caller's software sent, never anything read from practice data."""
    return {"at": at, "actor": actor[:MAX_TEXT], "role": role[:40], "action": action[:MAX_TEXT],
            "resource": resource_path[:MAX_TEXT], "outcome": int(outcome),
            "ip": (ip or "")[:64] or None, "user_agent": (user_agent or "")[:MAX_TEXT] or None,
            "expire_at": _six_years_after(at)}


def _six_years_after(at: datetime) -> datetime:
    try:
        return at.replace(year=at.year + RETENTION_YEARS)
    except ValueError:  # 29 February
        return at.replace(year=at.year + RETENTION_YEARS, day=28)
