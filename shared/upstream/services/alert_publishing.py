"""Writing alerts, then telling the `alerts` topic: shared by every producer (detectors, the
risk scorer) so that each one gets the same guarantee.

Alerts are written before they are published, and each severity is published once: `save`
reports which alerts' current severity the topic has not heard yet; a crash between the
write and the publish is repaired by the redelivery, which finds them still unpublished.
They are published largest dollars at stake first, so a weekly budget spends on those.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from upstream.domain.detect.findings import Alert
from upstream.domain.notify.words import at_stake
from upstream.ports import AlertStore, Publisher


def save_and_publish(customer: str, alerts: Sequence[Alert], known: set[str],
                     store: AlertStore, publisher: Publisher, topic: str) -> list[str]:
    """The ids published this time."""
    unpublished = store.save(customer, alerts, known)
    by_id = {alert.alert_id: alert for alert in alerts}
    # Most dollars at stake first: under the weekly budget the largest are the ones e-mailed.
    unpublished = sorted(unpublished, key=lambda i: -(at_stake(
        by_id[i].model_dump(mode="json")) or 0.0) if i in by_id else 0.0)
    for alert_id in unpublished:
        stored = store.get(customer, alert_id) or {}
        stored.pop("published_severity", None)
        alert = by_id.get(alert_id)
        payload = alert.model_dump_json().encode() if alert else _json(stored)
        severity = str(stored.get("severity", alert.severity if alert else ""))
        publisher.publish(topic, payload, {"customer_id": customer,
                                           "type": str(stored.get("type")),
                                           "severity": severity})
        store.mark_published(customer, alert_id, severity)
    return unpublished


def _json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, default=str, sort_keys=True).encode()
