"""The deployed closure (requirements.lock) against the direct pins and against what the
tests run on: every direct pin locked at its version, every locked package hashed, and the
test environment holding exactly the locked versions (so a green suite speaks for the code
that deploys). `make lock-check` proves the lock is what requirements.txt resolves to."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)")


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def _pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        if match := _PIN.match(line.strip()):
            found[_name(match[1])] = match[2]
    return found


def test_every_direct_pin_is_locked_at_its_version_with_hashes() -> None:
    direct, locked = _pins(ROOT / "requirements.txt"), _pins(ROOT / "requirements.lock")
    assert direct and all(locked.get(name) == version for name, version in direct.items())
    blocks = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / "requirements.lock").read_text())
    assert all("--hash=sha256:" in block for block in blocks if _PIN.match(block))
    assert len(locked) > 3 * len(direct)  # the closure, not only the direct pins


def test_the_tests_run_on_the_locked_versions() -> None:
    differ: dict[str, tuple[str, str | None]] = {}
    for name, version in _pins(ROOT / "requirements.lock").items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            differ[name] = (version, None)
            continue
        if installed != version:
            differ[name] = (version, installed)
    assert not differ, f"locked vs installed: {differ}"
