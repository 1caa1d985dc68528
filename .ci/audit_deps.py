"""`make audit-deps`: pip-audit on the locked closure, where a package it could not check is a
failure to check, never a pass.

pip-audit prints "No known vulnerabilities found" even when it skipped every package because
its vulnerability service did not answer (measured on the development machine, which reaches
only the package index: 71 of 71 skipped). This reads its JSON and says plainly what was
checked. Exit 0: every package checked, none vulnerable; 1: vulnerabilities found; 2: some
packages could not be checked (the result proves nothing about them).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

LOCK = Path(__file__).resolve().parents[1] / "requirements.lock"  # .ci/ → the repository


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "audit.json"
        run = subprocess.run(
            [sys.executable, "-m", "pip_audit", "-r", str(LOCK), "--require-hashes",
             "--disable-pip", "--no-deps", "--progress-spinner", "off", "-f", "json",
             "-o", str(report_path)], capture_output=True, text=True, timeout=900)
        if not report_path.exists():
            last = (run.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"audit-deps: could not check any package: {last[:300]}")
            return 2
        report = json.loads(report_path.read_text())
    dependencies = report.get("dependencies", [])
    skipped = [d for d in dependencies if d.get("skip_reason")]
    vulnerable = [d for d in dependencies if d.get("vulns")]
    checked = len(dependencies) - len(skipped)
    print(f"audit-deps: {len(dependencies)} locked packages, {checked} checked, "
          f"{len(skipped)} could not be checked, {len(vulnerable)} with known vulnerabilities")
    for dep in vulnerable:
        ids = ", ".join(v["id"] for v in dep["vulns"])
        print(f"  VULNERABLE {dep['name']} {dep.get('version')}: {ids}")
    if skipped:
        print(f"  not checked, e.g. {skipped[0]['name']}: {skipped[0]['skip_reason']}")
        print("audit-deps: FAILED TO CHECK: the vulnerability service did not answer for "
              "every package; run it where it does (Cloud Build's audit step).")
    if vulnerable:
        return 1
    return 2 if skipped else 0


if __name__ == "__main__":
    raise SystemExit(main())
