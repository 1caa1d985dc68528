"""The whole local stack as a user drives it: the `upstream` command, the storage bridge, the
file_ingest function under functions-framework, the emulators."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from upstream.stack import manager, processes
from upstream.stack.bridge import cloud_event_headers
from upstream.stack.config import StackConfig

pytestmark = pytest.mark.emulators
UPSTREAM = str(Path(sys.executable).parent / "upstream")


def cli(config: StackConfig, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **{f"UPSTREAM_STACK_{k.upper()}": str(v)
                            for k, v in config.model_dump().items()}}
    for key in config.emulator_env():  # the CLI must find the stack from its own config
        env.pop(key, None)
    return subprocess.run([UPSTREAM, *args], env=env, capture_output=True, text=True,
                          timeout=300, check=check)


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory, emulators: StackConfig) -> Path:
    out = tmp_path_factory.mktemp("sample")
    cli(emulators, "sample", "--out", str(out), "--start", "2025-01-01", "--end", "2025-03-31",
        "--lines-per-day", "30")
    return out


def upload(config: StackConfig, path: Path, customer: str, *extra: str) -> dict[str, Any]:
    done = cli(config, "upload", str(path), "--customer", customer, "--format", "json", *extra)
    return dict(json.loads(done.stdout))


def test_status_reports_every_address(emulators: StackConfig) -> None:
    status = json.loads(cli(emulators, "stack", "status", "--format", "json").stdout)
    assert status["project"] == emulators.project
    assert status["firestore"] == f"127.0.0.1:{emulators.firestore_port}"
    assert status["storage"].startswith("http://127.0.0.1:")
    assert set(status["functions"]) == {"file_ingest", "aggregator", "detectors",
                                        "athena_webhook", "ehr_webhook", "fhir_mapper",
                                        "ehr_fetcher", "alert_dispatcher", "api",
                                        "risk_scorer"}
    assert all(status["running"].values())


def test_up_twice_is_harmless(emulators: StackConfig) -> None:
    before = json.loads(emulators.state_file.read_text())["components"]
    cli(emulators, "stack", "up")
    after = json.loads(emulators.state_file.read_text())["components"]
    assert {k: v["pid"] for k, v in before.items()} == {k: v["pid"] for k, v in after.items()}


def test_drop_files_in_the_bucket_and_find_them_in_firestore(
        clean_stack: StackConfig, sample_dir: Path) -> None:
    cli(clean_stack, "tenant", "add", "acme")
    totals = 0
    for path in sorted((sample_dir / "claims").iterdir()):
        summary = upload(clean_stack, path, "acme")
        assert summary["status"] == "complete", summary
        assert summary["rows"] == summary["accepted"] + summary["rejected"]
        assert set(summary["reasons"]) <= {"invalid_cpt", "invalid_date", "missing_payer",
                                           "duplicate_row"}
        totals += summary["accepted"]
        if summary["rejected"]:
            assert summary["rejects_object"].startswith("rejects/acme/")
    auths = upload(clean_stack, sample_dir / "authorizations" / "authorizations.csv", "acme")
    assert auths["kind"] == "authorizations" and auths["rejected"] == 0
    count = json.loads(cli(clean_stack, "records", "--customer", "acme", "--count").stdout)
    assert count["count"] == totals
    truth = json.loads((sample_dir / "truth.json").read_text())
    assert totals >= truth["claim_lines"] * 0.99


def test_reupload_and_redelivered_event_change_nothing(
        clean_stack: StackConfig, sample_dir: Path, tmp_path: Path) -> None:
    cli(clean_stack, "tenant", "add", "acme")
    path = next(iter(sorted((sample_dir / "claims").iterdir())))
    first = upload(clean_stack, path, "acme")
    copy = tmp_path / "renamed.csv"
    shutil.copy(path, copy)
    again = upload(clean_stack, copy, "acme")
    assert again["upload_id"] == first["upload_id"]  # the original upload's summary…
    from tests.conftest import wait_for

    def duplicate_noted() -> bool:
        listing = json.loads(cli(clean_stack, "uploads", "--customer", "acme",
                                 "--format", "json").stdout)
        return listing[0].get("duplicate_objects") == ["uploads/acme/renamed.csv"]

    wait_for(duplicate_noted)  # …and the renamed copy noted as a duplicate, nothing stored
    # …and the same CloudEvent delivered twice more straight to the function: 2xx, no change.
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage  # type: ignore[attr-defined]

    blob = storage.Client(project=clean_stack.project, credentials=AnonymousCredentials()  # type: ignore[no-untyped-call]
                          ).bucket(clean_stack.bucket).get_blob(first["object"])
    url = manager.function_urls(clean_stack)["file_ingest"]
    for _ in range(2):
        answer = requests.post(url, data=json.dumps(blob._properties),
                               headers=cloud_event_headers(blob._properties), timeout=60)
        assert answer.ok
    count = json.loads(cli(clean_stack, "records", "--customer", "acme", "--count").stdout)
    assert count["count"] == first["accepted"]
    listing = json.loads(cli(clean_stack, "uploads", "--customer", "acme",
                             "--format", "json").stdout)
    assert len(listing) == 1


def test_unknown_tenant_upload_is_refused_visibly(clean_stack: StackConfig,
                                                  sample_dir: Path) -> None:
    """The CLI refuses at once, saying how to add the practice; a file dropped into the bucket
    by other means gets its reason next to it."""
    path = next(iter(sorted((sample_dir / "claims").iterdir())))
    started = time.monotonic()
    done = cli(clean_stack, "upload", str(path), "--customer", "nobody", check=False)
    assert done.returncode != 0 and "upstream tenant add nobody" in done.stderr
    assert time.monotonic() - started < 30
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage  # type: ignore[attr-defined]

    bucket = storage.Client(project=clean_stack.project,
                            credentials=AnonymousCredentials()).bucket(clean_stack.bucket)  # type: ignore[no-untyped-call]
    bucket.blob(f"uploads/nobody/{path.name}").upload_from_filename(str(path))
    from tests.conftest import wait_for

    wait_for(lambda: bucket.blob(f"rejects/nobody/{path.name}.error.txt").exists())


def test_down_stops_exactly_what_up_started(tmp_path: Path) -> None:
    """Its own stack on other ports: starts, proves every PID alive, stops every one."""
    config = StackConfig(project="upstream-e2e-down", data_dir=tmp_path, firestore_port=19681,
                         pubsub_port=19682, storage_port=19683, functions_base_port=19690,
                         athena_port=19689, smtp_port=19688)
    try:
        cli(config, "stack", "up")
        pids = {k: v["pid"] for k, v in json.loads(config.state_file.read_text())
                ["components"].items()}
        assert set(pids) == {"auth", "firestore", "pubsub", "storage", "upload_gateway",
                             "smtp", "athena_api",
                             "file_ingest", "aggregator", "detectors", "athena_webhook",
                             "ehr_webhook", "fhir_mapper", "ehr_fetcher", "alert_dispatcher",
                             "api", "risk_scorer", "bridge"}
        assert all(processes.alive(pid) for pid in pids.values())
    finally:
        stopped = json.loads(cli(config, "stack", "down", "--format", "json").stdout)["stopped"]
    assert set(stopped) == set(pids)
    assert not any(processes.alive(pid) for pid in pids.values())
    assert not processes.wait_http(config.url(config.firestore_port), 0.5)


def test_the_audit_command_lists_entries_and_audits_itself(clean_stack: StackConfig) -> None:
    cli(clean_stack, "tenant", "add", "audited")
    cli(clean_stack, "audit", "--customer", "audited", "--format", "json")
    second = json.loads(cli(clean_stack, "audit", "--customer", "audited",
                            "--format", "json").stdout)
    assert [e["action"] for e in second] == ["CLI audit", "CLI audit"]  # newest first
    assert all(e["actor"].startswith("cli:") and e["outcome"] == 200 for e in second)
    missing = cli(clean_stack, "audit", "--customer", "nobody-here", check=False)
    assert missing.returncode != 0 and "upstream tenant add" in missing.stderr


def test_tenant_add_with_an_owner_invites_them(clean_stack: StackConfig) -> None:
    """Onboarding in one command: the practice, its secrets, and the owner's invitation."""
    made = json.loads(cli(clean_stack, "tenant", "add", "owned", "--name", "Owned ABA",
                          "--owner", "Boss@Owned.example").stdout)
    assert made["status"] == "active" and made["owner"]["invitation_sent"] is True
    assert made["owner"]["email"] == "boss@owned.example"
    again = json.loads(cli(clean_stack, "tenant", "add", "owned", "--owner",
                           "boss@owned.example").stdout)
    assert again["owner"]["existed"] is True and again["secrets_written"] == []
    listed = json.loads(cli(clean_stack, "user", "list", "owned", "--format", "json").stdout)
    assert listed == [{"email": "boss@owned.example", "role": "owner", "disabled": False}]
    refused = cli(clean_stack, "tenant", "add", "../evil", check=False)
    assert refused.returncode != 0 and "customer ids" in refused.stderr


def test_user_reset_2fa_clears_the_authenticator_and_is_audited(
        clean_stack: StackConfig) -> None:
    """The operator's way back for a practice whose only owner lost their phone."""
    from tests.conftest import emulator_db
    from upstream.adapters.firestore_second_factor import FirestoreSecondFactors
    from upstream.adapters.identity import FirebaseIdentity
    from upstream.domain.practice.second_factor import FactorState

    cli(clean_stack, "tenant", "add", "phones")
    email = f"solo-{uuid.uuid4().hex[:8]}@phones.example"
    uid = FirebaseIdentity(clean_stack.project).add("phones", email, "owner", "password-123")
    factors = FirestoreSecondFactors(emulator_db(clean_stack))
    factors.change("phones", uid, lambda _: FactorState("nonce-1", None, 5))
    assert factors.state("phones", uid).enrolled
    done = json.loads(cli(clean_stack, "user", "reset-2fa", "phones", email.upper()).stdout)
    assert done == {"customer_id": "phones", "email": email, "authenticator": "reset"}
    assert factors.state("phones", uid) == FactorState()
    entries = json.loads(cli(clean_stack, "audit", "--customer", "phones",
                             "--format", "json").stdout)
    assert any(e["action"] == "user reset-2fa" and e["actor"].startswith("cli:")
               for e in entries)
    missing = cli(clean_stack, "user", "reset-2fa", "phones", "nobody@phones.example",
                  check=False)
    assert missing.returncode != 0 and "no such person" in missing.stderr
