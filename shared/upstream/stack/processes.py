"""Starting and stopping background processes by PID, each in its own process group so a
stop takes its children too (killing `gcloud` alone orphans the emulator's JVM)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import requests


def start(command: Sequence[str], log_file: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> int:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(list(command), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})},
                                cwd=cwd, start_new_session=True)
    return proc.pid


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


def stop(pid: int, grace_seconds: float = 5.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after the grace period."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline:
            if not alive(pid):
                _reap(pid)
                return
            time.sleep(0.05)


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
