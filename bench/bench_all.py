"""`make bench-all`: every benchmark, one after another (each on a stack of its own), one table,
written to BENCHMARKS.md with the machine it ran on. Each benchmark's own output follows the
table verbatim, so a figure in the table can be traced to the line it came from."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# (name, script, the output lines that carry the headline figures)
BENCHMARKS = (
    ("ingest", "bench/bench_ingest.py", ("file_ingest through", "aggregator", "function peak",
                                         "ratio ingest")),
    ("webhook", "bench/bench_webhook.py", ("latency p50", "floor", "accepted", "in process",
                                            "interval", "per slice", "after 15 s idle",
                                            "CPU pressure")),
    ("event to alert", "bench/bench_event_alert.py", ("event to alert",)),
    ("detection", "bench/bench_detect.py", ("detected", "false alerts by type")),
    ("network", "bench/bench_network.py", ("network test over", "median days earlier")),
    ("risk", "bench/bench_risk.py", ("rule score :", "calibrated :", "boosted    :", "p50")),
)


def _machine() -> str:
    memory = ""
    try:
        with open("/proc/meminfo") as info:
            memory = f", {int(info.readline().split()[1]) / 2**20:.0f} GiB"
    except OSError:
        pass
    cpu = ""
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info
                        if line.startswith("model name")), "")
    except OSError:
        pass
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}){memory}, "
            f"Python {platform.python_version()}")


def main() -> int:
    only = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))
    rows, sections, failed = [], [], 0
    for name, script, keys in BENCHMARKS:
        if only and name not in only:
            continue
        print(f"== {name} ({script})", flush=True)
        started = time.perf_counter()
        run = subprocess.run([sys.executable, "-u", script], cwd=ROOT, capture_output=True,
                             text=True, timeout=3600)
        seconds = time.perf_counter() - started
        output = run.stdout.strip()
        print(output, flush=True)
        if run.returncode:
            failed += 1
            output += "\n" + "\n".join(run.stderr.strip().splitlines()[-15:])
        picked = [line.strip() for line in output.splitlines()
                  if any(key in line for key in keys)]
        figures = "<br>".join(re.sub(r"\s+", " ", line).replace("|", "/") for line in picked)
        rows.append(f"| {name} | {figures or 'no figures (see below)'} | {seconds:.0f} |")
        sections.append(f"### {name}\n\n`python {script}` (exit {run.returncode})\n\n```\n"
                        f"{output}\n```\n")
    document = "\n".join([
        "# Benchmarks", "",
        f"Written by `make bench-all` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.", "",
        f"Machine: {_machine()}.", "",
        "| benchmark | figures | run time (s) |", "|---|---|---|", *rows, "",
        *sections])
    (ROOT / "BENCHMARKS.md").write_text(document)
    print(f"BENCHMARKS.md written: {len(rows)} benchmarks, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
