"""What the local stack runs: the same topics and triggers Terraform declares in `infra/`."""

from __future__ import annotations

from dataclasses import dataclass

from upstream.topics import TOPICS

__all__ = ["FUNCTIONS", "MAX_DELIVERY_ATTEMPTS", "TOPICS", "FunctionSpec"]


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
# Deliveries before a message goes to the dead-letter topic: Pub/Sub's maximum, as in infra/
# (Contract 7). Production backs off 10 s to 600 s between attempts, which spans hours. The
# stack sets no retry policy: measured on the emulator 0.8.20, a push that failed with the
# function down (connection refused) is never attempted again once any retry policy is set,
# even after the function is back (10 of 10 messages lost in 90 s); without one it retries
# about every second, so the stack rides out an outage of about 100 s, and `upstream dlq
# replay` brings back what a longer one dead-letters.
MAX_DELIVERY_ATTEMPTS = 100
