"""`GET /v1/audit`: the practice's access audit, newest first, for its owners and admins (keys
with the write scope until people sign in as themselves)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from upstream.domain.audit import ENTRY_ID
from upstream.services import page_tokens
from upstream.services.api_requests import AuditQuery
from upstream.services.webhooks import Answer, problem

if TYPE_CHECKING:
    from upstream.services.api import ApiDeps, Call


def _untoken(token: str | None) -> str | None:
    if token is None:
        return None
    decoded = page_tokens.decode(token)
    # Only an id this API wrote (`adapters/firestore_audit.py`): anything else, even printable,
    # could be a path Firestore refuses, which must be a 400 here, not a 500 there.
    return decoded if ENTRY_ID.fullmatch(decoded) else ""


def _json(entry: dict[str, Any]) -> dict[str, Any]:
    at = entry.get("at")
    return {"at": at.isoformat() if isinstance(at, datetime) else str(at),
            **{k: entry.get(k) for k in ("actor", "role", "action", "resource", "outcome",
                                         "ip", "user_agent")}}


def list_audit(call: Call, deps: ApiDeps) -> Answer:
    try:
        query = AuditQuery.model_validate(dict(call.query))
    except ValidationError as exc:
        first = exc.errors()[0]
        return problem(400, "bad-request", "Bad request",
                       f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}")
    after = _untoken(query.page_token)
    if after == "":
        return problem(400, "bad-request", "Bad request", "page_token is not one this API gave")
    since = datetime.combine(query.since, time(), UTC) if query.since else None
    page, last = deps.stores.audit_page(call.customer, since, query.actor, query.page_size,
                                        after)
    return Answer(200, {"entries": [_json(e) for e in page],
                        "next_page_token": page_tokens.encode(last)})
