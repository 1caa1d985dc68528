"""Each function's source archive, byte for byte reproducible.

A function's archive holds its `main.py`, the `upstream` package (vendored: Cloud Functions puts
the source root on `sys.path`) without what only the command line and the local stack use,
and the pinned `requirements.txt` of the repository. Entries are sorted, stamped 1980-01-01
with fixed permissions and compressed at a fixed level, so the same sources give the same
bytes and the same SHA-256: Terraform names the uploaded object after that hash, and an
unchanged function is not redeployed.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

FIXED_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644 << 16
# Only the CLI and the local stack use these; a function never imports them.
EXCLUDED = ("upstream/stack/", "upstream/deploy/", "upstream/cli", "upstream/offline.py",
            "upstream/mcp_server.py")
SKIPPED_SUFFIXES = (".pyc", ".pyo")
# The whole dependency closure, each pinned with its hashes (`make lock` writes it from the
# direct pins in requirements.txt): what every archive installs as its requirements.txt, so
# two deployments of one commit run the same code (pip then refuses any file whose hash is
# not listed).
LOCK_FILE = "requirements.lock"


def function_names(functions_dir: Path) -> list[str]:
    return sorted(p.name for p in functions_dir.iterdir() if (p / "main.py").is_file())


def _package_files(package_dir: Path) -> Iterator[tuple[str, Path]]:
    root = package_dir.parent
    for path in sorted(package_dir.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts \
                or path.suffix in SKIPPED_SUFFIXES:
            continue
        name = path.relative_to(root).as_posix()
        if name.startswith(EXCLUDED):
            continue
        yield name, path


def build_archive(function_dir: Path, package_dir: Path, requirements: Path) -> bytes:
    entries = [("main.py", function_dir / "main.py"), ("requirements.txt", requirements),
               *_package_files(package_dir)]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, path in sorted(entries):
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.external_attr = FILE_MODE
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    return out.getvalue()


def package_all(repo_root: Path, out_dir: Path) -> dict[str, dict[str, str]]:
    """Writes `<out>/<function>.zip` and `<out>/manifest.json` (name → file, sha256)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, dict[str, str]] = {}
    for name in function_names(repo_root / "functions"):
        data = build_archive(repo_root / "functions" / name, repo_root / "shared" / "upstream",
                             repo_root / LOCK_FILE)
        path = out_dir / f"{name}.zip"
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
        manifest[name] = {"file": path.name, "sha256": hashlib.sha256(data).hexdigest()}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest
