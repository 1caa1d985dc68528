"""The stack's storage bridge retries a failed delivery as Eventarc does: with backoff, for as
long as Eventarc keeps the event (a day), not for eight attempts (~90 s) while the dead
delivery's upload lease holds for 540 s (the first round's finding)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from upstream.stack.bridge import MAX_AGE_SECONDS, MAX_BACKOFF_SECONDS, Bridge, _Pending
from upstream.stack.config import StackConfig


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_failing_delivery_is_retried_for_a_day_with_capped_backoff(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr("upstream.stack.bridge.time.monotonic", clock)
    answers: list[int] = []

    def post(*_: Any, **__: Any) -> Any:
        answers.append(1)
        raise requests.ConnectionError("file_ingest is down")

    monkeypatch.setattr("upstream.stack.bridge.requests.post", post)
    bridge = Bridge(StackConfig(data_dir=tmp_path), target_url="http://127.0.0.1:9/")
    resource = {"bucket": "b", "name": "uploads/acme/claims/x.csv", "generation": "1"}
    item = _Pending(resource, first_at=clock.now)
    bridge._pending["k"] = item
    gaps = []
    while "k" in bridge._pending and clock.now - item.first_at < 3600:
        bridge._deliver("k", item)
        gaps.append(item.next_at - clock.now)
        clock.now = item.next_at
    assert "k" in bridge._pending and len(answers) > 8  # an hour later: still retrying
    assert max(gaps) == MAX_BACKOFF_SECONDS
    clock.now = item.first_at + MAX_AGE_SECONDS
    bridge._deliver("k", item)
    assert "k" not in bridge._pending  # a day later: dead-lettered, on disk
    assert (tmp_path / "dead-letter" / "storage-events.jsonl").read_text().count("x.csv") == 1
