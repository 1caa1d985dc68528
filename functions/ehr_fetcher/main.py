"""Pub/Sub `ehr-fetch` → the athenahealth claim fetched from athenaOne → `claims` (Contract 3a)."""

import functions_framework
from cloudevents.http import CloudEvent

from upstream.adapters.wiring import fetcher_deps
from upstream.logs import configure_logging
from upstream.services.fetch_ehr_events import handle_fetch_event


@functions_framework.cloud_event
def ehr_fetcher(event: CloudEvent) -> None:
    configure_logging()
    handle_fetch_event(event, fetcher_deps())
