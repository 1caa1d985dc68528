"""Pub/Sub `claims` → a risk score for each line not yet adjudicated, and a `high_risk_claim`
alert for a claim that scores HIGH (issue 5). Firestore errors propagate: Pub/Sub redelivers,
then dead-letters; a line version already scored is skipped."""

import functions_framework
from cloudevents.http import CloudEvent

from upstream.adapters.wiring import risk_deps
from upstream.logs import configure_logging
from upstream.services.score_claims import handle_claims_event


@functions_framework.cloud_event
def risk_scorer(event: CloudEvent) -> None:
    configure_logging()
    handle_claims_event(event, risk_deps())
