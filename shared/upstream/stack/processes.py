"""Starting and stopping background processes, each in its own process group so a stop takes
its children too (killing `gcloud` alone orphans the emulator's JVM).

A stored PID is not proof of anything: after the process ends, the kernel hands its number
to the next process, which on a shared machine may be someone else's. So a process is known
by its `Identity` (PID, the kernel's start time of that PID, and its command line, from
`/proc`), and nothing is signalled unless the process holding the PID now has the identity
recorded when we started it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests


@dataclass(frozen=True, slots=True)
class Identity:
    pid: int
    started: int  # /proc/<pid>/stat field 22: clock ticks after boot; unique per PID use
    command: str  # the command line, NUL-separated as /proc/<pid>/cmdline holds it

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "started": self.started, "command": self.command}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Identity | None:
        """None for a state entry without a start time (an older state file): such a PID
        cannot be proved ours, so it is never signalled."""
        try:
            return cls(int(data["pid"]), int(data["started"]), str(data["command"]))
        except (KeyError, TypeError, ValueError):
            return None


def identity_of(pid: int) -> Identity | None:
    """What /proc says about the process holding `pid` now; None if there is none."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            command = cmdline.read().decode(errors="replace").rstrip("\0")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    # fields[0] is field 3 (state), so field 22 (starttime) is fields[19]
    return Identity(pid, int(fields[19]), command)


def owned(recorded: Identity | None) -> bool:
    """Whether the process holding the recorded PID now is the one we started (alive).

    PID and start time together name one process since boot: a reused PID has a later start.
    The command line is compared too when /proc answers with one (it reads empty while a
    process is being torn down, which must not make our own process a stranger)."""
    if recorded is None or recorded.started < 0 or not alive(recorded.pid):
        return False
    now = identity_of(recorded.pid)
    if now is None or now.started != recorded.started:
        return False
    return not now.command or not recorded.command or now.command == recorded.command


def start(command: Sequence[str], log_file: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> Identity:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(list(command), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})},
                                cwd=cwd, start_new_session=True)
    # Read at once: the child is ours until it exits, and it cannot exit unnoticed here
    # (Popen keeps it unreaped, so the PID is not reused before we wait on it).
    for _ in range(50):
        found = identity_of(proc.pid)
        if found is not None and found.command:
            return found
        time.sleep(0.01)
    return found or Identity(proc.pid, -1, "")


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is not alive.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def stop(recorded: Identity, grace_seconds: float = 5.0) -> bool:
    """SIGTERM the process group, then SIGKILL what is left after the grace period; only if
    the process holding the PID is still the one recorded (checked before each signal).
    Returns whether it was ours to stop."""
    pid = recorded.pid
    if not owned(recorded):
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not owned(recorded):
            return True
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return True
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline:
            if not alive(pid):
                _reap(pid)
                return True
            time.sleep(0.05)
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def wait_tcp(host: str, port: int, timeout: float, pid: int | None = None) -> bool:
    """True once something accepts connections on host:port (the SMTP server)."""
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            if pid is not None and not alive(pid):
                return False
            time.sleep(0.1)
    return False


def ready(url: str, timeout: float, pid: int | None = None) -> bool:
    """`tcp://host:port` waits for a listening socket, anything else for an HTTP answer."""
    if url.startswith("tcp://"):
        host, _, port = url.removeprefix("tcp://").rpartition(":")
        return wait_tcp(host, int(port), timeout, pid)
    return wait_http(url, timeout, pid)


def wait_http(url: str, timeout: float, pid: int | None = None) -> bool:
    """True once `url` answers at all (any status); False on timeout or if `pid` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return True
        except requests.RequestException:
            if pid is not None and not alive(pid):
                return False
            time.sleep(0.1)
    return False
