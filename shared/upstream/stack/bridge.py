"""Storage → CloudEvent bridge: the part of Eventarc the storage emulator lacks.

Polls the uploads bucket and, for every new object generation, POSTs to `file_ingest` the
same binary-mode CloudEvent Eventarc sends in production
(`google.cloud.storage.object.v1.finalized`, data = the object's JSON resource). A failed
delivery (non-2xx or no answer) is retried as Eventarc's Pub/Sub transport retries it: with
exponential backoff, for as long as the event is retained (24 hours), then written to a
dead-letter file. So a delivery that crashed mid-upload is retried after its lease lapses
(540 s) and finishes the upload, locally as in production (Contract 7). Eventarc backs off
10 s to 600 s; the bridge 1 s to 60 s, so a restarted function is fed within a minute.
Delivered generations are remembered on disk, so a restarted bridge neither loses nor
repeats events.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage  # type: ignore[attr-defined]

from upstream.logs import configure_logging, get_logger
from upstream.stack.config import StackConfig

log = get_logger("upstream.bridge")

POLL_SECONDS = 0.5
MAX_AGE_SECONDS = 24 * 3600.0  # Eventarc's Pub/Sub transport keeps an event a day
MAX_BACKOFF_SECONDS = 60.0
DELIVERY_TIMEOUT_SECONDS = 600.0  # a large upload can take minutes to ingest


def cloud_event_headers(resource: dict[str, Any]) -> dict[str, str]:
    """Binary content mode CloudEvent headers, as Eventarc sets them for Cloud Storage."""
    key = f"{resource['bucket']}/{resource['name']}#{resource['generation']}"
    return {
        "ce-id": str(int(hashlib.sha256(key.encode()).hexdigest()[:15], 16)),
        "ce-specversion": "1.0",
        "ce-type": "google.cloud.storage.object.v1.finalized",
        "ce-source": f"//storage.googleapis.com/projects/_/buckets/{resource['bucket']}",
        "ce-subject": f"objects/{resource['name']}",
        "ce-time": resource.get("timeCreated") or resource.get("updated") or "",
        "content-type": "application/json",
    }


@dataclass(slots=True)
class _Pending:
    resource: dict[str, Any]
    attempts: int = 0
    next_at: float = 0.0
    first_at: float = field(default_factory=time.monotonic)


class Bridge:
    def __init__(self, config: StackConfig, target_url: str, prefix: str = "uploads/") -> None:
        self._config = config
        self._target = target_url
        self._prefix = prefix
        self._seen_file = config.data_dir / "bridge-seen.json"
        self._dead_file = config.data_dir / "dead-letter" / "storage-events.jsonl"
        self._seen: dict[str, str] = self._load_seen()
        self._pending: dict[str, _Pending] = {}
        self._client = storage.Client(project=config.project,
                                      credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]

    def _load_seen(self) -> dict[str, str]:
        try:
            return dict(json.loads(self._seen_file.read_text()))
        except FileNotFoundError:
            return {}

    def _save_seen(self) -> None:
        tmp = self._seen_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._seen))
        os.replace(tmp, self._seen_file)

    def poll_once(self) -> None:
        for blob in self._client.list_blobs(self._config.bucket, prefix=self._prefix):
            key = f"{blob.name}#{blob.generation}"
            if key not in self._seen and key not in self._pending:
                self._pending[key] = _Pending(dict(blob._properties))
        now = time.monotonic()
        for key, item in list(self._pending.items()):
            if item.next_at <= now:
                self._deliver(key, item)

    def _deliver(self, key: str, item: _Pending) -> None:
        item.attempts += 1
        try:
            answer = requests.post(self._target, data=json.dumps(item.resource),
                                   headers=cloud_event_headers(item.resource),
                                   timeout=DELIVERY_TIMEOUT_SECONDS)
            ok, status = answer.ok, str(answer.status_code)
        except requests.RequestException as exc:
            ok, status = False, type(exc).__name__
        if ok:
            self._finish(key, "delivered")
            log.info("event delivered", extra={"object_key": key, "attempts": item.attempts})
        elif time.monotonic() - item.first_at >= MAX_AGE_SECONDS:
            self._dead_file.parent.mkdir(parents=True, exist_ok=True)
            with open(self._dead_file, "a") as dead:
                dead.write(json.dumps({"key": key, "status": status, "attempts": item.attempts,
                                       "resource": item.resource}) + "\n")
            self._finish(key, "dead-lettered")
            log.error("event dead-lettered", extra={"object_key": key, "status": status})
        else:
            item.next_at = time.monotonic() + min(2.0 ** (item.attempts - 1), MAX_BACKOFF_SECONDS)
            log.warning("event delivery failed, will retry",
                        extra={"object_key": key, "status": status, "attempts": item.attempts})

    def _finish(self, key: str, outcome: str) -> None:
        self._pending.pop(key, None)
        self._seen[key] = outcome
        self._save_seen()

    def run(self) -> None:
        running = True

        def _stop(*_: object) -> None:
            nonlocal running
            running = False

        signal.signal(signal.SIGTERM, _stop)
        while running:
            try:
                self.poll_once()
            except Exception:
                log.exception("bridge poll failed")
            time.sleep(POLL_SECONDS)


def main() -> None:
    configure_logging()
    Bridge(StackConfig(), target_url=sys.argv[1]).run()


if __name__ == "__main__":
    main()
