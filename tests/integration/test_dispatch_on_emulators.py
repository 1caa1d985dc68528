"""The alert dispatcher on the stack: an alert on the `alerts` topic reaches the local SMTP
server and a Slack-like receiver once, with its delivery log in Firestore."""

from __future__ import annotations

import email
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.cloud import pubsub_v1  # type: ignore[attr-defined]

from tests.conftest import emulator_db, wait_for
from tests.unit.test_channels import (
    Receiver,
    receiver,  # noqa: F401 (fixture)
)
from tests.unit.test_notify import alert
from upstream.adapters.firestore_deliveries import FirestoreDeliveries
from upstream.adapters.firestore_store import FirestoreTenants
from upstream.adapters.secrets import LocalFileSecretStore
from upstream.services.tenants import slack_webhooks_secret
from upstream.stack.config import StackConfig

pytestmark = pytest.mark.emulators


def test_the_delivery_log_delivers_once_and_lets_a_failure_retry(clean_stack: StackConfig,
                                                                  unique: str) -> None:
    log = FirestoreDeliveries(emulator_db(clean_stack))
    now = datetime.now(UTC)
    key, meta = f"a-{unique}.mail.HIGH", {"channel": "mail"}
    assert log.begin("acme", key, meta, now, 60) == "deliver"
    assert log.begin("acme", key, meta, now, 60) == "busy"  # a concurrent redelivery
    assert log.begin("acme", key, meta, now + timedelta(seconds=61), 60) == "deliver"  # crash
    log.finish("acme", key, "failed", now, "SMTP unreachable")
    assert log.begin("acme", key, meta, now, 60) == "deliver"
    log.finish("acme", key, "delivered", now)
    assert log.begin("acme", key, meta, now, 60) == "delivered"
    stored = log.get("acme", key) or {}
    assert [a["status"] for a in stored["attempts"]] == ["failed", "delivered"]
    log.queue("acme", f"q-{unique}", meta, now)
    log.queue("acme", f"q-{unique}", meta, now)
    assert (log.get("acme", f"q-{unique}") or {})["status"] == "queued"
    assert log.get("other", key) is None  # under the tenant only


def test_the_weekly_budget_counts_distinct_alerts_delivered_since_monday(
        clean_stack: StackConfig, unique: str) -> None:
    log = FirestoreDeliveries(emulator_db(clean_stack))
    customer, now = f"budget-{unique}", datetime.now(UTC)
    for alert_id, channel, when, status in [
            ("a1", "mail", now, "delivered"), ("a1", "team", now, "delivered"),
            ("a2", "mail", now, "delivered"), ("a3", "mail", now, "failed"),
            ("a4", "mail", now - timedelta(days=9), "delivered")]:
        key = f"{alert_id}.{channel}.HIGH"
        log.begin(customer, key, {"alert_id": alert_id, "channel": channel}, when, 60)
        log.finish(customer, key, status, when)
    log.queue(customer, "a5.mail.HIGH", {"alert_id": "a5", "channel": "mail"}, now)
    assert log.alerts_sent_since(customer, now - timedelta(days=7)) == 2
    assert log.alerts_sent_since(f"other-{unique}", now - timedelta(days=7)) == 0


def _mails(directory: Path, marker: str) -> list[email.message.Message]:
    found = []
    for path in sorted(directory.glob("*.eml")) if directory.exists() else []:
        message = email.message_from_bytes(path.read_bytes())
        if marker in str(message["Subject"]):
            found.append(message)
    return found


def test_an_alert_on_the_topic_is_mailed_and_posted_once(
        clean_stack: StackConfig, unique: str,
        receiver: tuple[Receiver, str]) -> None:  # noqa: F811
    app, url = receiver
    config = clean_stack
    customer = f"notify-{unique}"
    LocalFileSecretStore(config.secrets_file).put(
        slack_webhooks_secret(customer), json.dumps({"team": url}).encode())
    FirestoreTenants(emulator_db(config)).upsert(customer, {"name": "Acme ABA", "notifications": {
        "timezone": "UTC", "channels": [
            {"id": "mail", "kind": "email", "recipients": ["rcm@example.com"],
             "min_severity": "LOW"},
            {"id": "team", "kind": "slack", "min_severity": "LOW"}]}})
    title = f"UnitedHealthcare drift {unique}"
    payload = json.dumps(alert(customer_id=customer, alert_id=f"al-{unique}",
                               title=title)).encode()
    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(config.project, "alerts")
    publisher.publish(topic, payload, customer_id=customer).result(timeout=30)
    (mail,) = wait_for(lambda: _mails(config.mail_dir, unique), timeout=60)
    assert mail["To"] == "rcm@example.com"
    wait_for(lambda: len(app.received) == 1, timeout=30)
    assert b"UnitedHealthcare drift" in app.received[0][1]
    deliveries = FirestoreDeliveries(emulator_db(config))
    wait_for(lambda: (deliveries.get(customer, f"al-{unique}.team.HIGH") or {}).get(
        "status") == "delivered", timeout=30)
    publisher.publish(topic, payload, customer_id=customer).result(timeout=30)  # redelivered
    time.sleep(4)
    assert len(_mails(config.mail_dir, unique)) == 1 and len(app.received) == 1
