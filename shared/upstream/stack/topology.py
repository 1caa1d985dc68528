"""What the local stack runs: the same topics and triggers Terraform declares in `infra/`."""

from __future__ import annotations

from dataclasses import dataclass

# Every topic has a dead-letter twin (`<topic>-dlq`), as in production.
TOPICS = ("claims", "ehr-events", "ehr-fetch", "alerts", "detector-runs")


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    name: str
    signature: str  # http | cloudevent
    trigger: str  # "storage" (object finalized in the uploads bucket), "http", or "topic:<name>"


FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec("file_ingest", "cloudevent", "storage"),
    FunctionSpec("aggregator", "cloudevent", "topic:claims"),
    FunctionSpec("detectors", "cloudevent", "topic:detector-runs"),
    FunctionSpec("athena_webhook", "http", "http"),
    FunctionSpec("ehr_webhook", "http", "http"),
    FunctionSpec("fhir_mapper", "cloudevent", "topic:ehr-events"),
    FunctionSpec("ehr_fetcher", "cloudevent", "topic:ehr-fetch"),
    FunctionSpec("alert_dispatcher", "cloudevent", "topic:alerts"),
    FunctionSpec("api", "http", "http"),
    FunctionSpec("risk_scorer", "cloudevent", "topic:claims"),
)
# Deliveries before a message goes to the dead-letter topic (Pub/Sub's minimum is 5).
MAX_DELIVERY_ATTEMPTS = 5
