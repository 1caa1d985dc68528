"""The fast encoder must send exactly the bytes `WriteBatch.set` would send."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from google.cloud.firestore_v1 import _helpers
from google.cloud.firestore_v1.transforms import SERVER_TIMESTAMP, Increment
from hypothesis import given
from hypothesis import strategies as st

from upstream.adapters.firestore_encoding import create_write, set_write

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
