"""Publishing to Pub/Sub topics of the configured project."""

from __future__ import annotations

from google.cloud import pubsub_v1  # type: ignore[attr-defined]

# A publish not acknowledged in this time fails the delivery, which Pub/Sub then retries.
PUBLISH_TIMEOUT_SECONDS = 60


class PubSubPublisher:
    def __init__(self, client: pubsub_v1.PublisherClient, project: str) -> None:
        self._client = client
        self._project = project

    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> None:
        future = self._client.publish(self._client.topic_path(self._project, topic), data,
                                      **attributes)
        future.result(timeout=PUBLISH_TIMEOUT_SECONDS)
