"""The functions' source archives: reproducible bytes, self-contained imports."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from upstream.deploy.package import build_archive, function_names, package_all

ROOT = Path(__file__).resolve().parents[2]


def test_every_function_is_packaged_and_the_same_sources_give_the_same_bytes(
        tmp_path: Path) -> None:
    first = package_all(ROOT, tmp_path / "a")
    (ROOT / "shared" / "upstream" / "settings.py").touch()  # a new mtime changes nothing
    second = package_all(ROOT, tmp_path / "b")
    assert first == second
    assert set(first) == set(function_names(ROOT / "functions"))
    assert all((tmp_path / "a" / f"{name}.zip").read_bytes()
               == (tmp_path / "b" / f"{name}.zip").read_bytes() for name in first)


def test_an_archive_holds_main_requirements_and_the_package_but_not_the_cli(
        tmp_path: Path) -> None:
    data = build_archive(ROOT / "functions" / "aggregator", ROOT / "shared" / "upstream",
                         ROOT / "requirements.txt")
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert {"main.py", "requirements.txt"} <= set(names)
    assert "upstream/domain/data/payer_aliases.csv" in names
    assert {"upstream/domain/codes/data/carc_plain.psv",
            "upstream/domain/codes/data/x12_carc_texts.csv",
            "upstream/domain/codes/data/rarc_plain.psv"} <= set(names)
    assert not [n for n in names if n.startswith(("upstream/stack/", "upstream/cli"))
                or "__pycache__" in n]
    assert names == sorted(names)


@pytest.mark.parametrize("name", function_names(ROOT / "functions"))
def test_each_archive_imports_on_its_own(tmp_path: Path, name: str) -> None:
    """Extracted alone, `main` imports with the archive's own `upstream` (not the editable
    install of the checkout) and finds its entry point."""
    package_all(ROOT, tmp_path / "build")
    target = tmp_path / name
    zipfile.ZipFile(tmp_path / "build" / f"{name}.zip").extractall(target)
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import main, upstream; "
        "assert upstream.__file__.startswith(sys.argv[1]), upstream.__file__; "
        f"assert callable(getattr(main, {name!r}))"
    )
    result = subprocess.run([sys.executable, "-c", probe, str(target)], cwd=target,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
