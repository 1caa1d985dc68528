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
# (Contract 7: ride out an outage of an hour). Production backs off 10 s to 600 s; the stack
# 1 s to 60 s, so a function brought back is fed again within a minute (measured on the
# emulator 0.8.20: it honours both the backoff and the dead-letter policy), while 100 attempts
# still cover more than an hour.
MAX_DELIVERY_ATTEMPTS = 100
MIN_BACKOFF_SECONDS = 1
MAX_BACKOFF_SECONDS = 60
