"""The local stand-in for Cloud Storage's resumable sessions (`stack/resumable.py`), pure:
any split of a file into legal chunks, with any chunk sent twice (its answer lost) and status
queries between, stores exactly the file's bytes, once; what Cloud Storage refuses (a gap, an
odd-sized middle chunk, a length that differs from its range, more than the signed range, a
bad Content-Range) is refused, and the session keeps what it had."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from upstream.adapters.signed_urls import CHUNK_GRANULE
from upstream.stack.resumable import ResumableSessions

NAME = "/upstream-uploads/uploads/acme/claims/20260107T120000-0a1b2c3d-big.csv"


class Bucket:
    def __init__(self, fails: int = 0) -> None:
        self.stored: list[tuple[str, str, bytes]] = []
        self.fails = fails

    def store(self, name: str, content_type: str, path: Path) -> bool:
        if self.fails:
            self.fails -= 1
            return False
        self.stored.append((name, content_type, path.read_bytes()))
        return True


def _sessions(tmp: Path, bucket: Bucket) -> ResumableSessions:
    return ResumableSessions(bucket.store, tmp)


def _range(first: int, last: int, total: int | str) -> str:
    return f"bytes {first}-{last}/{total}"


@settings(max_examples=60, deadline=None)
@given(granules=st.integers(1, 6), tail=st.integers(0, CHUNK_GRANULE - 1),
       seed=st.integers(0, 2**32 - 1), known_total=st.booleans())
def test_any_legal_chunking_with_repeats_stores_the_file_once(
        tmp_path_factory: pytest.TempPathFactory, granules: int, tail: int, seed: int,
        known_total: bool) -> None:
    picker = random.Random(seed)
    data = picker.randbytes(granules * CHUNK_GRANULE + tail)
    bucket = Bucket()
    sessions = _sessions(tmp_path_factory.mktemp("s"), bucket)
    session = sessions.start(NAME, "application/octet-stream", len(data))
    offset = 0
    while True:
        left = len(data) - offset
        size = left if left <= CHUNK_GRANULE or picker.random() < 0.3 else \
            CHUNK_GRANULE * picker.randint(1, max(1, left // CHUNK_GRANULE))
        size = min(size, left)
        final = offset + size == len(data)
        total: int | str = len(data) if (final or known_total) else "*"
        if not final and size % CHUNK_GRANULE:
            size -= size % CHUNK_GRANULE
        answer = sessions.put(session, _range(offset, offset + size - 1, total),
                              data[offset:offset + size])
        if picker.random() < 0.3:  # the answer was lost: the same chunk again, then a query
            again = sessions.put(session, _range(offset, offset + size - 1, total),
                                 data[offset:offset + size])
            assert again.status == answer.status
            status = sessions.put(session, f"bytes */{len(data)}", b"")
            assert status.status in (200, 308)
        if answer.status == 200:
            break
        assert answer.status == 308 and answer.received == offset + size
        offset = answer.received
    assert bucket.stored == [(NAME, "application/octet-stream", data)]
    assert sessions.put(session, f"bytes */{len(data)}", b"").status == 200  # done stays done


def test_what_cloud_storage_refuses_is_refused_and_the_session_keeps_its_bytes(
        tmp_path: Path) -> None:
    data = bytes(range(256)) * (3 * CHUNK_GRANULE // 256)
    bucket = Bucket()
    sessions = _sessions(tmp_path, bucket)
    session = sessions.start(NAME, "application/octet-stream", len(data))
    first = sessions.put(session, _range(0, CHUNK_GRANULE - 1, len(data)),
                         data[:CHUNK_GRANULE])
    assert (first.status, first.received) == (308, CHUNK_GRANULE)
    refused = {
        "gap": (_range(CHUNK_GRANULE + 1, 2 * CHUNK_GRANULE, len(data)),
                data[CHUNK_GRANULE + 1:2 * CHUNK_GRANULE + 1]),
        "odd middle chunk": (_range(CHUNK_GRANULE, CHUNK_GRANULE + 99, len(data)),
                             data[CHUNK_GRANULE:CHUNK_GRANULE + 100]),
        "length differs": (_range(CHUNK_GRANULE, 2 * CHUNK_GRANULE - 1, len(data)), b"short"),
        "garbage range": ("bytes=0-5", b"x" * 6),
        "reversed": (_range(9, 3, len(data)), b""),
        "past the total": (_range(CHUNK_GRANULE, 2 * CHUNK_GRANULE - 1, CHUNK_GRANULE + 5),
                           data[CHUNK_GRANULE:2 * CHUNK_GRANULE]),
        "query with a body": (f"bytes */{len(data)}", b"x"),
        "huge numbers": ("bytes 0-99999999999999999999/1", b""),
    }
    for why, (content_range, body) in refused.items():
        answer = sessions.put(session, content_range, body)
        assert answer.status == 400, why
        assert sessions.put(session, f"bytes */{len(data)}", b"").received == CHUNK_GRANULE
    assert sessions.put("no-such-session", f"bytes */{len(data)}", b"").status == 404
    assert bucket.stored == []


def test_over_the_signed_range_the_session_is_refused_and_forgotten(tmp_path: Path) -> None:
    bucket = Bucket()
    sessions = _sessions(tmp_path, bucket)
    declared = sessions.start(NAME, "text/csv", CHUNK_GRANULE)
    assert sessions.put(declared, f"bytes */{CHUNK_GRANULE + 1}", b"").status == 400
    assert sessions.put(declared, f"bytes */{CHUNK_GRANULE}", b"").status == 404
    undeclared = sessions.start(NAME, "text/csv", CHUNK_GRANULE)
    assert sessions.put(undeclared, _range(0, CHUNK_GRANULE - 1, "*"),
                        b"a" * CHUNK_GRANULE).status == 308
    over = sessions.put(undeclared, _range(CHUNK_GRANULE, 2 * CHUNK_GRANULE - 1, "*"),
                        b"b" * CHUNK_GRANULE)
    assert over.status == 400 and "larger" in over.reason
    assert sessions.put(undeclared, "bytes */*", b"").status == 404
    assert bucket.stored == [] and list(tmp_path.iterdir()) == []  # nothing left behind


def test_a_bucket_that_fails_keeps_the_session_for_the_last_chunk_again(tmp_path: Path) -> None:
    bucket = Bucket(fails=1)
    sessions = _sessions(tmp_path, bucket)
    session = sessions.start(NAME, "text/csv", 100)
    assert sessions.put(session, _range(0, 9, 10), b"0123456789").status == 502
    assert sessions.put(session, "bytes */10", b"").status == 200  # asked again: stored now
    assert bucket.stored == [(NAME, "text/csv", b"0123456789")]
    assert sessions.name_of(session) == NAME and sessions.name_of("nope") is None
