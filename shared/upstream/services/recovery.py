"""A way back (Contract 7): dead-letter holds listed and replayed, aggregates reconciled.

Replay is safe because every consumer is idempotent (the aggregator's ledger, the ingest
markers, alert ids, delivery keys): a message replayed twice, or replayed after it was in
fact processed, moves nothing. Reconcile is safe because it writes only what differs from
a recompute of the stored lines, and nothing when nothing is wrong.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from upstream.domain import safe_json
from upstream.domain.reconcile import diff_cells, expected_state, ledger_differs
from upstream.logs import get_logger
from upstream.ports import DeadLetterHold, HeldMessage, ReconcileStore

log = get_logger(__name__)

CHANGES_SHOWN = 50


def message_customer(message: HeldMessage) -> str | None:
    """The tenant a held message belongs to: its `customer_id` attribute, else the
    `customer_id` of its JSON payload (every typed message carries one)."""
    if message.attributes.get("customer_id"):
        return message.attributes["customer_id"]
    try:
        payload = safe_json.loads(message.data)
    except safe_json.UnsafeJson:
        return None
    found = payload.get("customer_id") if isinstance(payload, dict) else None
    return str(found) if found else None


def _for(customer: str | None, message: HeldMessage) -> bool:
    return customer is None or message_customer(message) == customer


def list_held(topic: str, hold: DeadLetterHold, customer: str | None = None) -> dict[str, Any]:
    """What `<topic>-dlq` holds (for one tenant, or all): count, oldest, reasons."""
    held = [m for m in hold.peek(topic) if _for(customer, m)]
    oldest = min((m.published_at for m in held), default=None)
    return {"topic": topic, "held": len(held),
            "oldest": oldest.isoformat() if oldest else None,
            "reasons": dict(Counter(m.reason() for m in held).most_common())}


def replay_held(topic: str, hold: DeadLetterHold, customer: str | None = None,
                ) -> dict[str, Any]:
    """Republishes what `<topic>-dlq` holds (one tenant's, or all) to `topic`."""
    replayed, left = hold.replay(topic, lambda m: _for(customer, m))
    log.warning("dead letters replayed", extra={"topic": topic, "replayed": replayed,
                                                "customer_id": customer or "*"})
    return {"topic": topic, "replayed": replayed, "left_held": left}


def _version(entry: dict[str, Any] | None) -> tuple[str, str]:
    if not entry:
        return ("", "")
    stamp = entry.get("updated_at")
    text = stamp.isoformat() if isinstance(stamp, datetime) else str(stamp or "")
    return (text, str(entry.get("content_hash", "")))


def reconcile(customer: str, store: ReconcileStore, apply: bool = True) -> dict[str, Any]:
    """Recomputes the tenant's aggregates from its stored lines; repairs what differs.

    A ledger entry newer than the line read here (the aggregator moved on while this ran)
    is left alone; run it when ingest is quiet, as the weekly self-check does (06:30 UTC).
    """
    lines = list(store.lines(customer))
    expected = expected_state(lines)
    diffs = diff_cells(expected.cells, store.cells(customer))
    stored_ledger = store.ledger(customer)
    ledger_fixes = {
        doc_id: entry for doc_id, entry in expected.ledger.items()
        if ledger_differs(stored_ledger.get(doc_id), entry)
        and _version(stored_ledger.get(doc_id)) <= _version(entry)}
    if apply and (diffs or ledger_fixes):
        store.repair(customer, diffs, ledger_fixes)
    report = {
        "customer_id": customer, "lines": len(lines), "cells": len(expected.cells),
        "cells_wrong": len(diffs), "ledger_wrong": len(ledger_fixes), "repaired": apply,
        "changes": [{"payer": d.payer, "day": d.day,
                     "fields": {name: {"stored": old, "recomputed": new}
                                for name, (old, new) in d.changed_fields().items()}}
                    for d in diffs[:CHANGES_SHOWN]]}
    if apply and (diffs or ledger_fixes):
        log.warning("aggregates reconciled", extra={
            k: v for k, v in report.items() if k != "changes"})
    return report


def self_check(customer: str, store: ReconcileStore) -> dict[str, Any]:
    """The weekly run's check: tenant-wide totals from the lines against the cells (four
    aggregation queries on each side). A lost or doubled change moves at least one count or
    sum, so equal totals mean nothing to repair; unequal ones reconcile at once, before the
    detectors read the cells."""
    from_lines, from_cells = store.totals(customer)
    if not from_lines.differs(from_cells):
        return {"status": "consistent", "totals": from_lines.as_dict()}
    report = reconcile(customer, store)
    return {"status": "reconciled", "from_lines": from_lines.as_dict(),
            "from_cells": from_cells.as_dict(),
            **{k: v for k, v in report.items() if k != "changes"}}


def reconcile_all(customers: Iterable[str], store: ReconcileStore,
                  apply: bool = True) -> list[dict[str, Any]]:
    return [reconcile(customer, store, apply) for customer in customers]
