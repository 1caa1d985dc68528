"""Pub/Sub `detector-runs` → alerts (one tenant), or one message per tenant for `"*"`.

A malformed message goes to the dead-letter topic with its reason; anything else that fails
propagates, so the tenant's run is retried and then dead-lettered by the subscription.
"""

import functions_framework
from cloudevents.http import CloudEvent

from upstream.adapters.wiring import detector_deps
from upstream.logs import configure_logging
from upstream.services.detector_runs import handle_run_event


@functions_framework.cloud_event
def detectors(event: CloudEvent) -> None:
    configure_logging()
    handle_run_event(event, detector_deps())
