"""`make phi-scan`: the whole pipeline run on a stack of its own as staff and an EHR would use
it, then every place data lands searched for the raw patient identifiers and names that
went in. Goal: 0 hits.

In: six months of sample claims (three export styles), authorizations and an 835 through the
bucket with `upstream upload`; signed FHIR ExplanationOfBenefits with a named, identified
Patient through ehr_webhook; the weekly run; HIGH and CRITICAL alerts e-mailed.
Searched: every Firestore document (every string, at any depth, and every key), every log
line of every process, every rejects file in the bucket, every e-mail, and what the CLI
prints (alerts, uploads, records). A needle matches only as a whole token (not inside a
longer run of letters or digits), so a hash or an amount that happens to contain the digits
is not a hit; amounts are numbers, never searched.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

CUSTOMER = "phi"
SECRET = "phi-webhook-secret"
NAMES = [("Zebulon", "Quartermaine"), ("Philippa", "Oyelaran-Brook"), ("Marguerite", "Vasquez")]
UPSTREAM = str(Path(sys.executable).parent / "upstream")


def _config() -> Any:
    from upstream.stack.config import StackConfig

    return StackConfig(project="upstream-phi", data_dir=Path(tempfile.mkdtemp(prefix="phi-")),
                       firestore_port=22681, pubsub_port=22682, storage_port=22683,
                       functions_base_port=22690, athena_port=22689, smtp_port=22688)


def _cli(config: Any, *args: str) -> str:
    env = {**os.environ, **{f"UPSTREAM_STACK_{k.upper()}": str(v)
                            for k, v in config.model_dump().items()}}
    for key in config.emulator_env():
        env.pop(key, None)
    return subprocess.run([UPSTREAM, *args], env=env, capture_output=True, text=True,
                          timeout=600, check=True).stdout


def _needles_from_csv(path: Path) -> set[str]:
    """Every cell of a column that holds patient identifiers, as it is written in the file."""
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    delimiter = max(",;\t|", key=lambda d: text.splitlines()[0].count(d))
    rows = list(csv.reader(text.splitlines(), delimiter=delimiter))
    header = next((i for i, row in enumerate(rows) if any("patient" in c.lower() or "mrn" in
                                                          c.lower() or "member" in c.lower()
                                                          for c in row)), None)
    if header is None:
        return set()
    columns = [i for i, c in enumerate(rows[header]) if any(
        word in c.lower() for word in ("patient", "mrn", "member", "subscriber"))]
    found = set()
    for row in rows[header + 1:]:
        for i in columns:
            if i < len(row) and len(row[i].strip()) >= 5:
                found.add(row[i].strip())
    return found


def _eob(number: int) -> dict[str, Any]:
    given, family = NAMES[number % len(NAMES)]
    mrn = f"ZQ-{778800 + number}"
    return {
        "resourceType": "ExplanationOfBenefit", "id": f"phi-eob-{number}", "status": "active",
        "contained": [{"resourceType": "Patient", "id": "pat",
                       "identifier": [{"system": "urn:mrn", "value": mrn}],
                       "name": [{"given": [given], "family": family}],
                       "birthDate": "1987-06-05"}],
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type",
                             "code": "professional"}]},
        "use": "claim", "patient": {"reference": f"Patient/{mrn}", "display":
                                    f"{given} {family}"},
        "created": "2025-06-04", "insurer": {"display": "UHC"},
        "provider": {"reference": "Practitioner/1"}, "claim": {"reference": f"Claim/PHI{number}"},
        "outcome": "complete", "insurance": [{"focal": True,
                                              "coverage": {"reference": "Coverage/1"}}],
        "item": [{"sequence": 1, "productOrService": {"coding": [
            {"system": "http://www.ama-assn.org/go/cpt", "code": "97153"}]},
            "servicedDate": "2025-06-01", "net": {"value": 240.0, "currency": "USD"},
            "adjudication": [
                {"category": {"coding": [{"code": "submitted"}]}, "amount": {"value": 240}},
                {"category": {"coding": [{"code": "denied"}]}, "amount": {"value": 240},
                 "reason": {"coding": [{"code": "197"}]}}]}]}


def _post_ehr(config: Any, events: int) -> set[str]:
    from upstream.stack import manager

    url = manager.function_urls(config)["ehr_webhook"]
    needles = set()
    for number in range(events):
        resource = _eob(number)
        needles |= {resource["contained"][0]["identifier"][0]["value"],
                    resource["patient"]["display"], *NAMES[number % len(NAMES)], "1987-06-05"}
        body = json.dumps(resource).encode()
        stamp = str(int(time.time()))
        mac = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        answer = requests.post(url, data=body, timeout=30, headers={
            "X-Customer-ID": CUSTOMER, "X-Idempotency-Key": f"phi-{number}",
            "X-Timestamp": stamp, "X-Signature": f"sha256={mac}"})
        assert answer.status_code == 200, answer.text
    return needles


def _strings(value: Any) -> Iterator[str]:
    """Every string in a decoded document, keys included, at any depth (no recursion)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, bytes):
            yield item.decode(errors="replace")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def _firestore_documents(config: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every document in the database: the collection ids are discovered by walking the tree
    (every document of a small collection, the first few of a large one, whose documents are
    leaves in this layout), then each id is read whole with one collection-group query, so
    no document is missed and no document costs an RPC of its own."""
    from upstream.adapters.clients import firestore_client

    client = firestore_client()
    ids: set[str] = set()
    pending = list(client.collections())
    while pending:
        collection = pending.pop()
        ids.add(collection.id)
        refs = list(collection.list_documents(page_size=300))
        for ref in refs if len(refs) <= 200 else refs[:20]:
            pending.extend(c for c in ref.collections() if c.id not in ids)
    for collection_id in sorted(ids):
        for snap in client.collection_group(collection_id).stream():
            yield snap.reference.path, snap.to_dict() or {}


def main() -> int:
    config = _config()
    os.environ.update(config.emulator_env())
    from upstream.stack import manager

    started = time.perf_counter()
    try:
        manager.up(config)
        return _run(config, started)
    finally:
        manager.down(config)


def _run(config: Any, started: float) -> int:
    sample = config.data_dir / "sample"
    _cli(config, "tenant", "add", CUSTOMER, "--name", "PHI Scan Practice", "--webhook-secret",
         SECRET, "--notify-email", "billing@phi.example")
    _cli(config, "sample", "--out", str(sample), "--start", "2025-01-01", "--end", "2025-06-30",
         "--lines-per-day", "30")
    needles: set[str] = set()
    inputs = sorted(p for folder in ("claims", "authorizations", "remittance")
                    for p in (sample / folder).glob("*"))
    for path in inputs:
        if path.suffix == ".csv":
            needles |= _needles_from_csv(path)
        _cli(config, "upload", str(path), "--customer", CUSTOMER, "--format", "json")
    for path in (p for p in inputs if p.suffix != ".csv"):  # 835: the patient's name and id
        text = path.read_text(errors="replace")
        for segment in re.findall(r"NM1\*QC\*[^~]*", text):
            parts = segment.split("*")
            needles |= {p for p in (parts[3], parts[4], parts[9] if len(parts) > 9 else "")
                        if len(p) >= 3}
    needles |= _post_ehr(config, 12)
    _cli(config, "run", "weekly", "--customer", CUSTOMER, "--as-of", "2025-07-01")
    _cli(config, "mail", "--wait", "60")
    needles = {n for n in needles if len(n) >= 3}
    print(f"needles: {len(needles):,} raw patient identifiers, names and birth dates from "
          f"{len(inputs)} files and 12 EHR resources")
    pattern = re.compile(r"(?<![0-9A-Za-z])(?:" + "|".join(
        re.escape(n) for n in sorted(needles, key=len, reverse=True)) + r")(?![0-9A-Za-z])")
    hits: dict[str, list[str]] = {}
    counts: dict[str, int] = {}

    def scan(source: str, where: str, texts: Iterator[str] | list[str]) -> None:
        counts[source] = counts.get(source, 0) + 1
        for text in texts:
            if found := pattern.search(text):
                hits.setdefault(source, []).append(f"{where}: …{found.group(0)[:3]}…")
                return

    for path, document in _firestore_documents(config):
        scan("firestore documents", path, list(_strings(document)))
    for log in sorted(config.logs_dir.glob("*.log")):
        for number, line in enumerate(log.read_text(errors="replace").splitlines(), 1):
            try:
                texts = list(_strings(json.loads(line)))
            except ValueError:
                texts = [line]
            scan("log lines", f"{log.name}:{number}", texts)
    from upstream.adapters.clients import storage_client

    for blob in storage_client().list_blobs(config.bucket, prefix="rejects/"):
        scan("rejects files", blob.name, [blob.download_as_bytes().decode(errors="replace")])
    for mail in sorted(config.mail_dir.glob("*.eml")):
        raw = mail.read_bytes()
        decoded = [raw.decode(errors="replace")]
        for chunk in re.findall(rb"\n\n([A-Za-z0-9+/=\r\n]{40,})", raw):
            try:
                decoded.append(base64.b64decode(chunk).decode(errors="replace"))
            except ValueError:
                pass
        scan("e-mails", mail.name, decoded)
    for args in (("alerts", "--customer", CUSTOMER, "--format", "json"),
                 ("uploads", "--customer", CUSTOMER, "--format", "json"),
                 ("records", "--customer", CUSTOMER, "--limit", "500"),
                 ("records", "--customer", CUSTOMER, "--kind", "authorizations", "--limit",
                  "500")):
        scan("CLI outputs", " ".join(args[:1]), [_cli(config, *args)])
    # The control: the uploaded inputs hold every needle, so a scanner that finds nothing
    # there is broken, and its zero elsewhere would prove nothing.
    control = sum(1 for blob in storage_client().list_blobs(config.bucket, prefix="uploads/")
                  if pattern.search(blob.download_as_bytes().decode("utf-8", "replace")))
    print(f"control: {control} of the uploaded input files hit (must be > 0)")
    print("| where | scanned | hits |\n|---|---|---|")
    for source, count in counts.items():
        print(f"| {source} | {count:,} | {len(hits.get(source, []))} |")
    for source, found in hits.items():
        for where in found[:5]:
            print(f"  HIT {source} {where}")
    total = sum(len(v) for v in hits.values())
    passed = not total and control > 0
    print(f"phi-scan: {'PASS' if passed else 'FAIL'}: {total} hits, control {control}, "
          f"{time.perf_counter() - started:.0f} s")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
