"""The access audit in the dashboard (Contract 6), for owners and admins: the entries newest
first with filters (since a day, one actor), paged, and the same selection as a CSV file.

The CSV neutralises formulas (a user agent or an e-mail is text someone else chose: a cell
starting `=` would run in a spreadsheet) and is capped: a compliance review over a long
period pages through `GET /v1/audit` or `upstream audit` instead.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from upstream.domain.audit import ENTRY_ID
from upstream.domain.rejects import neutralize
from upstream.services import page_tokens
from upstream.services.dashboard_visit import Visit, common
from upstream.services.web_pages import CSV, Page, download, message, page

if TYPE_CHECKING:
    from upstream.services.dashboard import DashboardDeps

PAGE_SIZE = 100
CSV_MAX_ROWS = 10_000
COLUMNS = ("at", "actor", "role", "action", "resource", "outcome", "ip", "user_agent")


def _filters(visit: Visit) -> tuple[date | None, str | None, str | None] | None:
    """(since, actor, after) from the query, or None for a query that is not ours."""
    query = visit.request.query
    since_text, actor = query.get("since") or "", (query.get("actor") or "").strip()
    try:
        since = date.fromisoformat(since_text) if since_text else None
    except ValueError:
        return None
    after = None
    if query.get("page"):
        after = page_tokens.decode(query["page"])
        if not ENTRY_ID.fullmatch(after):
            return None
    if len(actor) > 200:
        return None
    return since, actor or None, after


def _rows(entries: list[dict[str, Any]]) -> list[dict[str, str]]:
    rows = []
    for entry in entries:
        at = entry.get("at")
        shown = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if isinstance(at, datetime) \
            else str(at or "")
        rows.append({"at": shown, **{k: "" if entry.get(k) is None else str(entry.get(k))
                                     for k in COLUMNS[1:]}})
    return rows


def _since(day: date | None) -> datetime | None:
    return datetime.combine(day, time(), UTC) if day else None


def audit_page(visit: Visit, deps: DashboardDeps) -> Page:
    found = _filters(visit)
    if found is None:
        return message(400, "Audit", "Those filters are not valid: a day as YYYY-MM-DD, an "
                                     "actor of at most 200 characters.")
    since, actor, after = found
    entries, last = deps.stores.audit_page(visit.principal.customer_id, _since(since), actor,
                                           PAGE_SIZE, after)
    keep = {k: v for k, v in (("since", since.isoformat() if since else ""),
                              ("actor", actor or "")) if v}
    older = f"/audit?{urlencode({**keep, 'page': page_tokens.encode(last)})}" if last else None
    return page(200, "audit.html", **common(visit), rows=_rows(entries), since=keep.get("since",
                ""), actor=keep.get("actor", ""), older=older,
                csv_link="/audit.csv" + (f"?{urlencode(keep)}" if keep else ""),
                back="/audit")


def audit_csv(visit: Visit, deps: DashboardDeps) -> Page:
    found = _filters(visit)
    if found is None:
        return message(400, "Audit", "Those filters are not valid.")
    since, actor, _ = found
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    after: str | None = None
    written = 0
    while written < CSV_MAX_ROWS:
        entries, after = deps.stores.audit_page(visit.principal.customer_id, _since(since),
                                                actor, min(500, CSV_MAX_ROWS - written), after)
        for row in _rows(entries):
            writer.writerow([neutralize(row[c]) for c in COLUMNS])
        written += len(entries)
        if not after or not entries:
            break
    stamp = visit.now.strftime("%Y%m%d")
    return download(out.getvalue(), CSV, f"upstream-audit-{stamp}.csv")
