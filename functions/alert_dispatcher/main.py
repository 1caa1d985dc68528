"""Pub/Sub `alerts` → the tenant's e-mail, Slack and webhook channels (issue 6)."""

import functions_framework
from cloudevents.http import CloudEvent

from upstream.adapters.wiring import dispatch_deps
from upstream.logs import configure_logging
from upstream.services.dispatch_alerts import handle_alert_event


@functions_framework.cloud_event
def alert_dispatcher(event: CloudEvent) -> None:
    configure_logging()
    handle_alert_event(event, dispatch_deps())
