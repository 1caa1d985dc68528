"""Ingestion benchmark (`make bench`): a generated 100k-line messy CSV through the real
`file_ingest` function on the local stack, against the same documents written by a bare
batched writer. Prints figures; asserts nothing.

Figures: end-to-end lines/s (upload → summary complete), the function process's peak RSS,
offline parse throughput (domain code only), bare-writer lines/s with p50/p99 batch commit
latency, and the ratio ingest time / bare write time (goal ≤ 1.3).
"""

from __future__ import annotations

import io
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

LINES = int(os.environ.get("BENCH_LINES", "100000"))
PARALLEL = 4
BATCH = 499


def _rss_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _process_tree(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = [int(p) for p in children.read_text().split()] if children.exists() else []
    return [pid] + [k for kid in kids for k in _process_tree(kid)]


def main() -> None:
    from upstream.domain.sample import export_claims, generate
    from upstream.stack import manager
    from upstream.stack.config import StackConfig

    data_dir = Path(tempfile.mkdtemp(prefix="upstream-bench-"))
    config = StackConfig(project="upstream-bench", data_dir=data_dir, firestore_port=28681,
                         pubsub_port=28682, storage_port=28683, functions_base_port=28690,
                         athena_port=28689, smtp_port=28688)
    os.environ.update(config.emulator_env())

    # ~0.73 of days carry full volume (weekends, holidays): size the year to LINES lines.
    sample = generate(date(2025, 1, 1), date(2025, 12, 31), lines_per_day=LINES / 266,
                      patients=2000, seed=11)
    csv_bytes = export_claims(sample.claims[:LINES], "athena", seed=11)
    path = data_dir / "claims-100k.csv"
    path.write_bytes(csv_bytes)
    print(f"input: {min(LINES, len(sample.claims)):,} lines, {len(csv_bytes) / 1e6:.1f} MB "
          f"(athena style: BOM, $ amounts, US dates, ~0.4% broken rows, ~0.2% duplicates)")

    # Offline parse throughput: the domain code alone, no I/O.
    from upstream.offline import offline_context, read_file

    started = time.perf_counter()
    report, records = read_file(io.BytesIO(csv_bytes), None, offline_context("bench"))
    from upstream.domain.records import stored_document

    documents = [stored_document(r) for r in records]
    parse_s = time.perf_counter() - started
    print(f"parse (domain only): {report.rows / parse_s:,.0f} rows/s "
          f"({report.accepted:,} accepted, {report.rejected:,} rejected)")

    try:
        manager.up(config)
        _bench_function(config, path, data_dir)
        for fast in (False, True):
            bare_s, commits = _bench_bare_writer(config, documents, fast)
            how = "our encoder" if fast else "WriteBatch.set"
            print(f"bare batched writer ({how}): {len(documents) / bare_s:,.0f} docs/s "
                  f"({len(documents):,} docs, {PARALLEL} batches of {BATCH} in parallel); batch "
                  f"commit p50 {statistics.median(commits) * 1000:.0f} ms, p99 "
                  f"{statistics.quantiles(commits, n=100)[98] * 1000:.0f} ms; ratio ingest / "
                  f"bare write {_FUNCTION_SECONDS[0] / bare_s:.2f} (goal ≤ 1.3)")
    finally:
        manager.down(config)


_FUNCTION_SECONDS: list[float] = []


def _bench_function(config, path: Path, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    import json

    from upstream.adapters.clients import firestore_client, storage_client
    from upstream.adapters.firestore_store import FirestoreTenants, FirestoreUploads
    from upstream.adapters.gcs import GcsObjectStore
    from upstream.adapters.secrets import LocalFileSecretStore

    LocalFileSecretStore(config.secrets_file).put("patient-hash-key-bench", os.urandom(32))
    FirestoreTenants(firestore_client()).upsert("bench", {"name": "bench"})
    state = json.loads(config.state_file.read_text())["components"]
    fn_pids = _process_tree(state["file_ingest"]["pid"])
    baseline = max(_rss_kib(p, "VmRSS") for p in fn_pids)
    import hashlib

    from upstream.events import content_id

    upload_id = content_id(hashlib.md5(path.read_bytes()).hexdigest(), path.stat().st_size)
    started = time.perf_counter()
    GcsObjectStore(storage_client()).upload_file(config.bucket, "uploads/bench/claims.csv",
                                                 str(path), "text/csv")
    uploads = FirestoreUploads(firestore_client())
    while True:
        summary = uploads.get_upload("bench", upload_id)
        if summary and summary.get("status") != "processing":
            break
        time.sleep(0.1)
    elapsed = time.perf_counter() - started
    _FUNCTION_SECONDS.append(elapsed)
    peak = max(_rss_kib(p, "VmHWM") for p in _process_tree(state["file_ingest"]["pid"]))
    print(f"file_ingest through the function: {summary['rows']:,} rows in {elapsed:.1f} s = "
          f"{summary['rows'] / elapsed:,.0f} lines/s (upload, bridge, parse, Firestore, "
          f"Pub/Sub, rejects); status {summary['status']}, stored {summary['stored']:,}")
    print(f"function peak RSS: {peak / 1024:.0f} MiB (idle before upload: "
          f"{baseline / 1024:.0f} MiB)")
    from upstream.adapters.firestore_aggregates import FirestoreAggregates

    aggregates = FirestoreAggregates(firestore_client())
    while True:  # the time a count was asked, not answered: a count of 98k entries takes s
        asked = time.perf_counter()
        if aggregates.lines_aggregated("bench") >= summary["stored"]:
            break
        time.sleep(0.5)
    caught_up = asked - started
    print(f"aggregates (counted by ingest for a new file, by the aggregator otherwise): all "
          f"{summary['stored']:,} lines aggregated {caught_up:.1f} s after upload = "
          f"{summary['stored'] / caught_up:,.0f} lines/s; behind ingest by "
          f"{max(0.0, caught_up - elapsed):.1f} s")


def _bench_bare_writer(config, documents, fast: bool) -> tuple[float, list[float]]:  # type: ignore[no-untyped-def]
    """The same documents, no parsing, no markers, no messages: the floor for ingest. With
    `fast`, through the encoder ingest uses; without, through the library's `WriteBatch.set`."""
    from upstream.adapters.clients import firestore_client
    from upstream.adapters.firestore_encoding import set_write

    client = firestore_client()
    target = client.collection("customers", "bare-fast" if fast else "bare", "claims")
    commits: list[float] = []

    def commit(chunk) -> None:  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        batch = client.batch()
        if fast:
            batch._add_write_pbs([set_write(target.document(doc_id)._document_path, doc)
                                  for doc_id, doc in chunk])
        else:
            for doc_id, doc in chunk:
                batch.set(target.document(doc_id), doc)
        batch.commit()
        commits.append(time.perf_counter() - t0)

    chunks = [documents[i:i + BATCH] for i in range(0, len(documents), BATCH)]
    started = time.perf_counter()
    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(commit, chunks))
    return time.perf_counter() - started, commits


if __name__ == "__main__":
    main()
