"""Contract 7, pure: the recompute that reconcile compares against, held-message handling, and
the API's dead-letter routes with an in-memory hold (the real hold: tests/integration)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_api import call, setup
from upstream.domain.aggregates import contribution_delta, line_contribution
from upstream.domain.reconcile import diff_cells, expected_state
from upstream.ports import HeldMessage
from upstream.services.recovery import list_held, message_customer, replay_held

T0 = datetime(2026, 1, 1, tzinfo=UTC)
_LINE = st.fixed_dictionaries({
    "payer": st.sampled_from(["Aetna", "Cigna", "UHC"]),
    "cpt": st.sampled_from(["97153", "97155", "90837"]),
    "outcome": st.sampled_from(["PENDING", "DENIED", "PAID", "PARTIAL", "VOID"]),
    "decided_date": st.sampled_from(["2025-11-03", "2025-11-04", None]),
    "submitted_date": st.just("2025-10-20"),
    "billed_cents": st.integers(0, 500_000),
    "paid_cents": st.integers(0, 500_000),
    "carc_codes": st.lists(st.sampled_from(["CO-97", "CO-197", "PR-1"]), max_size=2)})


def _apply_all(changes: list[tuple[str, dict[str, Any]]],
               delivered: list[bool]) -> dict[str, dict[str, float]]:
    """What the aggregator holds after receiving only the `delivered` changes, in order."""
    cells: dict[str, dict[str, float]] = {}
    last: dict[str, dict[str, dict[str, float]]] = {}
    for (doc_id, doc), arrived in zip(changes, delivered, strict=True):
        if not arrived:
            continue
        new = line_contribution(doc)
        for key, fields in contribution_delta(last.get(doc_id, {}), new).items():
            target = cells.setdefault(key, {})
            for name, amount in fields.items():
                target[name] = target.get(name, 0) + amount
        last[doc_id] = new
    return cells


@settings(max_examples=200)
@given(versions=st.lists(st.tuples(st.integers(0, 6), _LINE), min_size=1, max_size=40),
       delivered=st.lists(st.booleans(), min_size=40, max_size=40))
def test_after_any_lost_changes_the_diff_leads_back_to_the_recompute(
        versions: list[tuple[int, dict[str, Any]]], delivered: list[bool]) -> None:
    """Whatever subset of changes the aggregator missed, writing the diff's expected
    counters gives exactly what receiving every change would have; with nothing missed,
    there is no diff."""
    changes = [(f"line-{n}", {**doc, "updated_at": (T0 + timedelta(minutes=i)).isoformat()})
               for i, (n, doc) in enumerate(versions)]
    latest = dict(changes)
    expected = expected_state(latest.items())
    complete = _apply_all(changes, [True] * len(changes))
    stored_complete = {k: ("", "", v) for k, v in complete.items()}
    assert not diff_cells(expected.cells, stored_complete)
    partial = _apply_all(changes, delivered[:len(changes)])
    repaired = {k: dict(v) for k, v in partial.items()}
    for diff in diff_cells(expected.cells, {k: ("", "", v) for k, v in partial.items()}):
        repaired[diff.key] = dict(diff.expected)
    nonzero = {k: {n: a for n, a in v.items() if a} for k, v in repaired.items()}
    assert {k: v for k, v in nonzero.items() if v} == {k: c.counters for k, c in
                                                       expected.cells.items()}


class MemoryHold:
    def __init__(self, messages: list[HeldMessage]) -> None:
        self.messages = messages
        self.published: list[tuple[str, bytes, dict[str, str]]] = []

    def peek(self, topic: str) -> list[HeldMessage]:
        return list(self.messages)

    def replay(self, topic: str, chosen: Callable[[HeldMessage], bool]) -> tuple[int, int]:
        replayed = [m for m in self.messages if chosen(m)]
        for message in replayed:
            self.published.append((topic, message.data, message.original_attributes()))
        self.messages = [m for m in self.messages if not chosen(m)]
        return len(replayed), len(self.messages)


def held(customer: str | None, attributes: dict[str, str], data: Any = None,
         minutes: int = 0) -> HeldMessage:
    body = data if isinstance(data, bytes) else json.dumps(data or {"customer_id": customer})
    return HeldMessage(message_id=f"m{minutes}-{customer}", data=body if isinstance(
        body, bytes) else body.encode(), attributes=attributes,
        published_at=T0 + timedelta(minutes=minutes))


def test_held_messages_are_attributed_listed_and_replayed_without_failure_attributes() -> None:
    exhausted = {"CloudPubSubDeadLetterSourceDeliveryCount": "100",
                 "CloudPubSubDeadLetterSourceSubscription": "aggregator-push",
                 "customer_id": "acme", "kind": "claims"}
    hold = MemoryHold([
        held("acme", exhausted, minutes=5),
        held("acme", {"reason": "malformed_change_batch", "detail": "bad"}, minutes=1),
        held("beta", {"customer_id": "beta"}, minutes=0),
        held(None, {}, data=b"\xff not json", minutes=2)])
    assert message_customer(hold.messages[1]) == "acme"  # from the payload
    assert message_customer(hold.messages[3]) is None
    listing = list_held("claims", hold, "acme")
    assert listing == {"topic": "claims", "held": 2, "oldest": (T0 + timedelta(minutes=1))
                       .isoformat(), "reasons": {"delivery failed 100 times": 1,
                                                 "malformed_change_batch": 1}}
    assert list_held("claims", hold)["held"] == 4
    assert replay_held("claims", hold, "acme") == {"topic": "claims", "replayed": 2,
                                                   "left_held": 2}
    assert [a for _, _, a in hold.published] == [{"customer_id": "acme", "kind": "claims"}, {}]


def test_the_api_lists_and_replays_only_the_callers_dead_letters() -> None:
    deps, _, tokens = setup()
    hold = MemoryHold([held("acme", {"customer_id": "acme", "reason": "x"}),
                       held("beta", {"customer_id": "beta", "reason": "y"})])
    deps = type(deps)(stores=deps.stores, clock=deps.clock, dead_letters=hold)
    status, body = call(deps, "GET", "/v1/admin/dead-letters", tokens["write"])
    claims = next(t for t in body["topics"] if t["topic"] == "claims")
    assert status == 200 and claims["held"] == 1 and claims["reasons"] == {"x": 1}
    assert call(deps, "GET", "/v1/admin/dead-letters", tokens["read"])[0] == 403
    assert call(deps, "POST", "/v1/admin/dead-letters/nope/replay", tokens["write"])[0] == 404
    status, body = call(deps, "POST", "/v1/admin/dead-letters/claims/replay", tokens["write"])
    assert status == 200 and body == {"topic": "claims", "replayed": 1,
                                      "skipped_other_tenants": 1}
    assert [m.attributes["customer_id"] for m in hold.messages] == ["beta"]
