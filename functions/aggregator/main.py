"""Pub/Sub `claims` → per-payer daily aggregates, exactly once per claim change.

Firestore errors propagate: the delivery fails and Pub/Sub redelivers (then dead-letters);
the ledger makes the retry harmless. A malformed message is dead-lettered with its reason.
"""

import functions_framework
from cloudevents.http import CloudEvent

from upstream.adapters.wiring import aggregate_deps
from upstream.logs import configure_logging
from upstream.services.aggregate_changes import handle_change_event


@functions_framework.cloud_event
def aggregator(event: CloudEvent) -> None:
    configure_logging()
    handle_change_event(event, aggregate_deps())
