"""Pub/Sub `ehr-events` → claim lines and outcomes in Firestore → `claims` (Contract 3)."""

import functions_framework
from cloudevents.http import CloudEvent

from upstream.adapters.wiring import mapper_deps
from upstream.logs import configure_logging
from upstream.services.map_ehr_events import handle_ehr_event


@functions_framework.cloud_event
def fhir_mapper(event: CloudEvent) -> None:
    configure_logging()
    handle_ehr_event(event, mapper_deps())
