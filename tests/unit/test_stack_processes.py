"""The local stack signals only what it started: a PID in a state file is checked against
the process holding it now (start time and command line) before any signal."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from upstream.stack import manager, processes
from upstream.stack.config import StackConfig


@pytest.fixture
def stranger() -> Iterator[subprocess.Popen[bytes]]:
    """A process this test started but the stack did not: it stands for someone else's
    process that now holds a PID the stack once recorded."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                            start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def _state(tmp_path: Path, entry: dict[str, object]) -> StackConfig:
    config = StackConfig(data_dir=tmp_path)
    config.state_file.write_text(json.dumps({"components": {"firestore": entry}}))
    return config


def test_a_reused_pid_survives_stack_down(tmp_path: Path,
                                          stranger: subprocess.Popen[bytes]) -> None:
    real = processes.identity_of(stranger.pid)
    assert real is not None
    # what the stack recorded for its own, long-gone process that had the same PID
    stale = {"pid": stranger.pid, "started": real.started - 1, "command": real.command,
             "port": 8681}
    left = {"stopped": [], "left_alone": ["firestore"]}
    assert manager.down(_state(tmp_path, stale)) == left
    assert stranger.poll() is None
    other_command = {**stale, "started": real.started, "command": "java -jar emulator.jar"}
    assert manager.down(_state(tmp_path, other_command)) == left
    assert stranger.poll() is None
    # an older state file with a bare PID cannot be proved ours: never signalled
    assert manager.down(_state(tmp_path, {"pid": stranger.pid, "port": 8681})) == left
    assert stranger.poll() is None
    assert manager.status(_state(tmp_path, stale))["running"]["firestore"] is False


def test_the_process_it_recorded_is_stopped(tmp_path: Path) -> None:
    started = processes.start([sys.executable, "-c", "import time; time.sleep(60)"],
                              tmp_path / "p.log")
    entry = {**started.to_json(), "port": 1}
    assert manager.status(_state(tmp_path, entry))["running"]["firestore"] is True
    assert manager.down(_state(tmp_path, entry)) == {"stopped": ["firestore"]}
    assert not processes.alive(started.pid)
    assert processes.identity_of(started.pid) is None or not processes.owned(started)
