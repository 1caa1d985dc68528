"""`upstream stack up|down|status`: start what is missing, stop exactly what was started.

State (component → PID, start time, command line and port) lives in `<data_dir>/stack.json`;
`up` skips a component that is still the process it started and whose port answers, so
running it twice is harmless; `down` signals only processes proved to be its own.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

from upstream.stack import processes
from upstream.stack.config import StackConfig
from upstream.stack.topology import FUNCTIONS, MAX_DELIVERY_ATTEMPTS, TOPICS

READY_TIMEOUT_SECONDS = 60.0
# Started first and waited for last: the Auth emulator's Node start-up (~25 s on 2 cores)
# overlaps the JVMs' instead of adding to them.
DEFERRED = frozenset({"auth"})


class StackError(RuntimeError):
    pass


def _load_state(config: StackConfig) -> dict[str, Any]:
    try:
        return dict(json.loads(config.state_file.read_text()))
    except FileNotFoundError:
        return {"components": {}}


def _save_state(config: StackConfig, state: dict[str, Any]) -> None:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    config.state_file.write_text(json.dumps(state, indent=1))


def _ours(entry: dict[str, Any] | None) -> bool:
    """A state entry names a process this stack started that still runs (not merely a PID
    that some process holds now)."""
    return entry is not None and processes.owned(processes.Identity.from_json(entry))


def _components(config: StackConfig) -> list[tuple[str, int, list[str], str]]:
    """(name, port, command, readiness URL) in start order."""
    java = os.environ.get("JAVA", "java")
    platform = config.gcloud_root / "platform"
    pubsub_jars = sorted((platform / "pubsub-emulator" / "lib").glob("cloud-pubsub-emulator-*.jar"))
    bin_dir = Path(sys.executable).parent
    host = config.host
    items: list[tuple[str, int, list[str], str]] = [
        ("firestore", config.firestore_port,
         [java, "-Duser.language=en", "-cp",
          str(platform / "cloud-firestore-emulator" / "cloud-firestore-emulator.jar"),
          "com.google.cloud.datastore.emulator.firestore.CloudFirestore", "start",
          f"--host={host}", f"--port={config.firestore_port}",
          f"--project_id={config.project}"],
         config.url(config.firestore_port)),
        ("pubsub", config.pubsub_port,
         [java, "-jar", str(pubsub_jars[-1]) if pubsub_jars else "missing-pubsub-emulator.jar",
          f"--host={host}", f"--port={config.pubsub_port}"],
         config.url(config.pubsub_port)),
        ("storage", config.storage_port,
         [str(bin_dir / "gcp-storage-emulator"), "start", f"--host={host}",
          f"--port={config.storage_port}", "--in-memory"],
         config.url(config.storage_port) + "/storage/v1/b"),
    ]
    auth, hub, logging_port = config.auth_ports
    items.insert(0, ("auth", auth,
                     # node itself, not the script's `#!/usr/bin/env node`: the process is
                     # known by its command line, which must not change after the start.
                     [shutil.which("node") or "node", str(config.firebase_bin.resolve()),
                      "emulators:start", "--only", "auth",
                      "--project", config.project,
                      "--config", str(_firebase_json(config, hub, logging_port))],
                     config.url(auth)))
    items.append(("upload_gateway", config.gateway_port,
                  [sys.executable, "-m", "upstream.stack.storage_gateway", f"--host={host}",
                   f"--port={config.gateway_port}",
                   f"--storage-url={config.url(config.storage_port)}",
                   f"--origin={function_urls(config)['api']}",
                   f"--secrets-file={config.secrets_file.resolve()}"],
                  f"tcp://{host}:{config.gateway_port}"))
    items.append(("smtp", config.smtp_port,
                  [sys.executable, "-m", "upstream.stack.mailbox", f"--host={host}",
                   f"--port={config.smtp_port}", f"--dir={config.mail_dir.resolve()}"],
                  f"tcp://{host}:{config.smtp_port}"))
    items.append(("athena_api", config.athena_port,
                  [sys.executable, "-m", "upstream.stack.fake_athena", f"--host={host}",
                   f"--port={config.athena_port}",
                   f"--secrets-file={config.secrets_file.resolve()}"],
                  config.url(config.athena_port)))
    for offset, spec in enumerate(FUNCTIONS):
        port = config.functions_base_port + offset
        items.append((spec.name, port,
                      [str(bin_dir / "functions-framework"),
                       f"--source={config.functions_dir / spec.name / 'main.py'}",
                       f"--target={spec.name}", f"--signature-type={spec.signature}",
                       f"--host={host}", f"--port={port}"],
                      config.url(port)))
    return items


def _firebase_json(config: StackConfig, hub: int, logging_port: int) -> Path:
    """firebase-tools reads its ports from a firebase.json; the stack writes its own."""
    path = (config.data_dir / "firebase.json").resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"emulators": {
        "auth": {"host": config.host, "port": config.auth_ports[0]},
        "hub": {"host": config.host, "port": hub},
        "logging": {"host": config.host, "port": logging_port},
        "ui": {"enabled": False}}}, indent=1))
    return path


def function_urls(config: StackConfig) -> dict[str, str]:
    return {spec.name: config.url(config.functions_base_port + i)
            for i, spec in enumerate(FUNCTIONS)}


def up(config: StackConfig) -> dict[str, Any]:
    state = _load_state(config)
    components: dict[str, Any] = state["components"]
    env = {**config.emulator_env(), "NO_UPDATE_NOTIFIER": "1"}
    if not config.firebase_bin.exists():
        raise StackError(f"{config.firebase_bin} is missing: run `make setup` (npm ci)")
    waiting: list[tuple[str, str, int]] = []
    for name, port, command, ready_url in _components(config):
        if _ours(components.get(name)) and processes.ready(ready_url, 2):
            continue
        if processes.ready(ready_url, 0.3):
            raise StackError(f"port {port} for {name} is taken by a process this stack did not "
                             "start; stop it or set UPSTREAM_STACK_* ports")
        # firebase-tools writes its debug log into the working directory: the stack's own.
        started = processes.start(command, config.logs_dir / f"{name}.log", env=env,
                                  cwd=config.data_dir.resolve() if name == "auth" else None)
        components[name] = {**started.to_json(), "port": port}
        _save_state(config, state)
        if name in DEFERRED:
            waiting.append((name, ready_url, started.pid))
            continue
        _await(config, name, ready_url, started.pid)
        if name == "storage":
            _provision(config)
    for name, ready_url, pid in waiting:
        _await(config, name, ready_url, pid)
    _start_bridge(config, state)
    return status(config)


def _await(config: StackConfig, name: str, ready_url: str, pid: int) -> None:
    if not processes.ready(ready_url, READY_TIMEOUT_SECONDS, pid):
        raise StackError(f"{name} did not start; see {config.logs_dir / (name + '.log')}")


def _start_bridge(config: StackConfig, state: dict[str, Any]) -> None:
    if _ours(state["components"].get("bridge")):
        return
    target = function_urls(config)["file_ingest"]
    started = processes.start([sys.executable, "-m", "upstream.stack.bridge", target],
                              config.logs_dir / "bridge.log",
                              env={**config.emulator_env(), **_stack_env(config)})
    state["components"]["bridge"] = {**started.to_json(), "port": None}
    _save_state(config, state)


def _stack_env(config: StackConfig) -> dict[str, str]:
    return {f"UPSTREAM_STACK_{k.upper()}": str(v) for k, v in config.model_dump().items()}


def _provision(config: StackConfig) -> None:
    """Bucket, topics and dead-letter topics, the local SMTP server's credentials
    (idempotent)."""
    os.environ.update(config.emulator_env())
    from upstream.adapters.secrets import LocalFileSecretStore
    from upstream.adapters.signed_urls import LOCAL_SIGNING_KEY_NAME, new_local_key
    from upstream.adapters.wiring import SMTP_SECRET

    secrets = LocalFileSecretStore(config.secrets_file)
    if secrets.get(LOCAL_SIGNING_KEY_NAME) is None:
        secrets.put(LOCAL_SIGNING_KEY_NAME, new_local_key())
    if secrets.get(SMTP_SECRET) is None:
        secrets.put(SMTP_SECRET, json.dumps({
            "host": config.host, "port": config.smtp_port, "sender": "alerts@upstream.local",
            "starttls": False}).encode())
    from google.api_core import exceptions as gexc
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import pubsub_v1, storage  # type: ignore[attr-defined]

    client = storage.Client(project=config.project,
                            credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    if client.lookup_bucket(config.bucket) is None:
        client.create_bucket(config.bucket)
    publisher = pubsub_v1.PublisherClient()
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    for topic in [t for base in TOPICS for t in (base, f"{base}-dlq")]:
        while True:
            try:
                publisher.create_topic(name=publisher.topic_path(config.project, topic))
                break
            except gexc.AlreadyExists:
                break
            except gexc.GoogleAPICallError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    _subscribe(config)


def _subscribe(config: StackConfig) -> None:
    """A push subscription per topic-triggered function (to its port, with the topic in the
    path so functions-framework gives the CloudEvent a proper `source`), each with a dead-letter
    policy; a pull subscription on every dead-letter topic keeps what lands there visible."""
    from google.api_core import exceptions as gexc
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

    subscriber = pubsub_v1.SubscriberClient()
    project = config.project
    wanted: list[dict[str, Any]] = []
    for offset, spec in enumerate(FUNCTIONS):
        if not spec.trigger.startswith("topic:"):
            continue
        topic = spec.trigger.removeprefix("topic:")
        port = config.functions_base_port + offset
        wanted.append({
            "name": subscriber.subscription_path(project, f"{spec.name}-push"),
            "topic": f"projects/{project}/topics/{topic}",
            "push_config": {"push_endpoint":
                            f"{config.url(port)}/projects/{project}/topics/{topic}"},
            "ack_deadline_seconds": 60,
            "dead_letter_policy": {"dead_letter_topic": f"projects/{project}/topics/{topic}-dlq",
                                   "max_delivery_attempts": MAX_DELIVERY_ATTEMPTS}})
    for topic in TOPICS:
        wanted.append({"name": subscriber.subscription_path(project, f"{topic}-dlq-hold"),
                       "topic": f"projects/{project}/topics/{topic}-dlq"})
    with subscriber:
        for request in wanted:
            try:
                subscriber.create_subscription(request=request)
            except gexc.AlreadyExists:
                pass


def down(config: StackConfig) -> dict[str, Any]:
    state = _load_state(config)
    stopped, not_ours = [], []
    # Reverse order: the bridge and functions before the emulators they call.
    for name in reversed(list(state["components"])):
        entry = state["components"][name]
        recorded = processes.Identity.from_json(entry)
        if recorded is not None and processes.stop(recorded):
            stopped.append(name)
        elif processes.alive(entry.get("pid")):
            not_ours.append(name)  # its PID now belongs to another process: left alone
    _save_state(config, {"components": {}})
    return {"stopped": stopped, **({"left_alone": not_ours} if not_ours else {})}


def status(config: StackConfig) -> dict[str, Any]:
    components = _load_state(config)["components"]

    def running(name: str) -> bool:
        return _ours(components.get(name))

    host = config.host
    return {
        "project": config.project,
        "firestore": f"{host}:{config.firestore_port}",
        "pubsub": f"{host}:{config.pubsub_port}",
        "storage": config.url(config.storage_port),
        "auth": config.auth_host,
        "bucket": config.bucket,
        "functions": function_urls(config),
        "running": {name: running(name) for name in
                    ["auth", "firestore", "pubsub", "storage", "upload_gateway", "smtp",
                     "athena_api",
                     *(s.name for s in FUNCTIONS), "bridge"]},
        "data_dir": str(config.data_dir.resolve()),
    }


def reset_data(config: StackConfig) -> None:
    """Empty Firestore, Storage and the Auth emulator's users (the emulators stay up); used by
    tests and `demo`."""
    base = config.url(config.firestore_port)
    requests.delete(f"{base}/emulator/v1/projects/{config.project}/databases/(default)/documents",
                    timeout=10).raise_for_status()
    requests.get(config.url(config.storage_port) + "/wipe", timeout=10).raise_for_status()
    requests.delete(f"http://{config.auth_host}/emulator/v1/projects/{config.project}/accounts",
                    timeout=10).raise_for_status()
    _provision(config)


def is_up(config: StackConfig, names: Sequence[str] = ("firestore", "pubsub", "storage")) -> bool:
    running = status(config)["running"]
    return all(running.get(name) for name in names)
