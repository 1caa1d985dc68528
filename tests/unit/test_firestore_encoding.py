"""The fast encoder must send exactly the bytes `WriteBatch.set` would send."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from google.cloud.firestore_v1 import _helpers
from google.cloud.firestore_v1.transforms import SERVER_TIMESTAMP, Increment
from hypothesis import given, settings
from hypothesis import strategies as st

from upstream.adapters.firestore_encoding import create_write, merge_increments_write, set_write

PATH = "projects/p/databases/(default)/documents/customers/acme/claims/abc"

scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
           | st.floats(allow_nan=False) | st.text(max_size=20)
           | st.datetimes(timezones=st.just(UTC)))
keys = st.text(min_size=1, max_size=12)
values = st.recursive(scalars, lambda inner: st.lists(scalars, max_size=4)
                      | st.dictionaries(keys, inner, max_size=4), max_leaves=12)


def _library_write(data: dict[str, Any]) -> Any:
    (write_pb,) = _helpers.pbs_for_set_no_merge(PATH, data)
    return write_pb._pb


@given(st.dictionaries(keys, values, max_size=8))
def test_same_protobuf_as_the_library(data: dict[str, Any]) -> None:
    assert set_write(PATH, data)._pb == _library_write(data)


def test_a_claim_line_document() -> None:
    data = {"cpt": "97153", "modifiers": ["HM", "U1"], "units": 14.0, "billed_cents": 42000,
            "paid_cents": None, "denied": False, "evidence": {"carc": ["CO-197"]},
            "at": datetime(2026, 1, 2, tzinfo=UTC)}
    assert set_write(PATH, data)._pb == _library_write(data)


@pytest.mark.parametrize("sentinel", [SERVER_TIMESTAMP, Increment(1)])
def test_transforms_are_refused_not_dropped(sentinel: Any) -> None:
    with pytest.raises(TypeError):
        set_write(PATH, {"n": sentinel})
    with pytest.raises(TypeError):
        set_write(PATH, {"nested": {"n": sentinel}})


def test_unsupported_type_is_refused() -> None:
    with pytest.raises(TypeError):
        set_write(PATH, {"x": object()})


@given(st.dictionaries(keys, values, max_size=8))
def test_create_is_the_same_protobuf_as_the_library(data: dict[str, Any]) -> None:
    (expected,) = _helpers.pbs_for_create(PATH, data)
    assert create_write(PATH, data)._pb == expected._pb


counter_names = st.lists(st.text(min_size=1, max_size=6).filter(lambda s: "." not in s),
                         min_size=1, max_size=3).map(".".join)
amounts = st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False)
meta_values = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=10)


def _library_merge(fields: dict[str, Any], increments: dict[str, Any]) -> Any:
    from upstream.domain.aggregates import nest

    data = {**fields, **nest({name: Increment(v) for name, v in increments.items()})}
    (write_pb,) = _helpers.pbs_for_set_with_merge(PATH, data, merge=True)
    return write_pb._pb


def _prefix_free(names: list[str]) -> bool:
    """`nest` cannot hold `a` and `a.b` both: the counters we write never do."""
    parts = [tuple(n.split(".")) for n in names]
    return not any(a != b and b[:len(a)] == a for a in parts for b in parts)


@settings(deadline=None)  # the first example imports the aggregates module
@given(st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda s: "." not in s),
                       meta_values, max_size=3),
       st.dictionaries(counter_names, amounts, min_size=1, max_size=12).filter(
           lambda d: _prefix_free(list(d))))
def test_merge_increments_are_the_library_bytes(fields: dict[str, Any],
                                                increments: dict[str, Any]) -> None:
    increments = {k: v for k, v in increments.items() if k.split(".")[0] not in fields}
    if not increments:
        return
    fast = merge_increments_write(PATH, fields, increments)._pb
    assert fast == _library_merge(fields, increments)  # maps compare without order


def test_an_aggregate_cell() -> None:
    fields = {"payer": "UnitedHealthcare", "day": "2026-01-02"}
    increments = {"decided": 1.0, "billed_cents": 42000.0, "cpt.97153.decided": 1.0,
                  "carc.CO-197.denied_cents": 42000.0, "cpt.`x\\y`.denied": 2}
    fast = merge_increments_write(PATH, fields, increments)._pb
    assert fast == _library_merge(fields, increments)


@pytest.mark.parametrize("fields, increments", [
    ({"meta": {"nested": 1}}, {"a": 1}), ({"meta": [1]}, {"a": 1}),
    ({}, {"a": "1"}), ({}, {"a": True}), ({}, {"a": None})])
def test_merge_increments_refuse_what_they_cannot_encode(fields: dict[str, Any],
                                                        increments: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        merge_increments_write(PATH, fields, increments)
