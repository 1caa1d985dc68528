"""Reading what `reconcile` compares and writing its repairs (Contract 7).

Reads a tenant's claim lines, aggregate cells and ledger; writes each differing cell whole
(a `set` without merge, so a counter that should be gone is gone) and each differing ledger
entry, in batches of at most 500 writes. The totals the weekly self-check compares come from
aggregation queries: Firestore sums on the server and bills one read per 1,000 entries.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from google.cloud import firestore

from upstream.adapters.firestore_aggregates import AGGREGATES, LEDGER
from upstream.adapters.firestore_store import tenant_collection
from upstream.domain.aggregates import flatten, nest
from upstream.domain.reconcile import DECIDED, PAID, CellDiff, Totals
from upstream.domain.records import RecordKind

BATCH = 450


class FirestoreReconcile:
    def __init__(self, client: firestore.Client) -> None:
        self._client = client

    def _collection(self, customer: str, name: str) -> firestore.CollectionReference:
        return tenant_collection(self._client, customer, name)

    def lines(self, customer: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for snap in self._collection(customer, RecordKind.CLAIMS.value).stream():
            yield snap.id, snap.to_dict() or {}

    def cells(self, customer: str) -> dict[str, tuple[str, str, dict[str, float]]]:
        found = {}
        for snap in self._collection(customer, AGGREGATES).stream():
            doc = snap.to_dict() or {}
            found[snap.id] = (str(doc.get("payer", "")), str(doc.get("day", "")),
                              flatten({k: v for k, v in doc.items() if k not in ("payer", "day")}))
        return found

    def ledger(self, customer: str) -> dict[str, dict[str, Any]]:
        return {snap.id: snap.to_dict() or {}
                for snap in self._collection(customer, LEDGER).stream()}

    def repair(self, customer: str, cells: Sequence[CellDiff],
               ledger: dict[str, dict[str, Any]]) -> None:
        aggregates, entries = (self._collection(customer, AGGREGATES),
                               self._collection(customer, LEDGER))
        writes: list[tuple[firestore.DocumentReference, dict[str, Any] | None]] = [
            (aggregates.document(diff.key),
             {"payer": diff.payer, "day": diff.day, **nest(diff.expected)}
             if diff.expected else None) for diff in cells]
        writes += [(entries.document(doc_id), entry) for doc_id, entry in ledger.items()]
        for start in range(0, len(writes), BATCH):
            batch = self._client.batch()
            for ref, data in writes[start:start + BATCH]:
                if data is None:
                    batch.delete(ref)
                else:
                    batch.set(ref, data)
            batch.commit()

    @staticmethod
    def _sums(query: Any, fields: Sequence[str]) -> list[float]:
        """One aggregation query per field: a query with several aggregations counts only
        the documents holding every field aggregated (a cell of denials alone has no
        `paid_cents`), which would make the sums disagree with the cells."""
        values = []
        for name in fields:
            agg = query.count(alias=name) if name == "count" else query.sum(name, alias=name)
            ((result,),) = agg.get()
            values.append(float(result.value or 0))
        return values

    def totals(self, customer: str) -> tuple[Totals, Totals]:
        """(from the lines, from the cells)."""
        claims = self._collection(customer, RecordKind.CLAIMS.value)
        outcome = "outcome"
        (decided,) = self._sums(claims.where(filter=firestore.FieldFilter(
            outcome, "in", DECIDED)), ["count"])
        denied, denied_cents = self._sums(claims.where(filter=firestore.FieldFilter(
            outcome, "==", "DENIED")), ["count", "billed_cents"])
        (paid_cents,) = self._sums(claims.where(filter=firestore.FieldFilter(
            outcome, "in", PAID)), ["paid_cents"])
        cell_sums = self._sums(self._collection(customer, AGGREGATES),
                               ["decided", "denied", "denied_cents", "paid_cents"])
        return (Totals(decided, denied, denied_cents, paid_cents), Totals(*cell_sums))
