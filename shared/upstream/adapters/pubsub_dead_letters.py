"""The dead-letter holds: `<topic>-dlq-hold`, a pull subscription on each `<topic>-dlq`
(declared in infra/pubsub.tf and by the local stack).

Peeking pulls everything and hands it back at once (ack deadline 0), so a listing changes
nothing. Replaying publishes each chosen message to its topic and waits for Pub/Sub to
accept it before acknowledging it in the hold: a crash in between leaves the message held
*and* replayed, which the idempotent consumers make harmless; the other order could lose it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1  # type: ignore[attr-defined]

from upstream.adapters.pubsub import PUBLISH_TIMEOUT_SECONDS
from upstream.ports import HeldMessage

PULL_BATCH = 500
PULL_TIMEOUT_SECONDS = 2.0  # an empty hold answers at this deadline, not before
# Each pull holds what it returned for this long; a listing of a large hold must finish
# reading before the first messages become deliverable again and are returned twice.
HOLD_SECONDS = 120


def hold_subscription(topic: str) -> str:
    return f"{topic}-dlq-hold"


class PubSubDeadLetters:
    def __init__(self, subscriber: pubsub_v1.SubscriberClient,
                 publisher: pubsub_v1.PublisherClient, project: str) -> None:
        self._subscriber, self._publisher, self._project = subscriber, publisher, project

    def _path(self, topic: str) -> str:
        return str(self._subscriber.subscription_path(self._project, hold_subscription(topic)))

    def _pull_all(self, topic: str) -> Iterator[tuple[str, HeldMessage]]:
        path = self._path(topic)
        seen: set[str] = set()
        while True:
            try:
                answer = self._subscriber.pull(
                    request={"subscription": path, "max_messages": PULL_BATCH},
                    timeout=PULL_TIMEOUT_SECONDS)
            except gexc.DeadlineExceeded:
                return
            fresh = [r for r in answer.received_messages if r.message.message_id not in seen]
            if not fresh:
                return
            ack_ids = [r.ack_id for r in fresh]
            self._subscriber.modify_ack_deadline(request={
                "subscription": path, "ack_ids": ack_ids, "ack_deadline_seconds": HOLD_SECONDS})
            for received in fresh:
                seen.add(received.message.message_id)
                yield received.ack_id, _held(received.message)

    def _release(self, topic: str, ack_ids: list[str]) -> None:
        for start in range(0, len(ack_ids), PULL_BATCH):
            self._subscriber.modify_ack_deadline(request={
                "subscription": self._path(topic), "ack_ids": ack_ids[start:start + PULL_BATCH],
                "ack_deadline_seconds": 0})

    def peek(self, topic: str) -> list[HeldMessage]:
        pulled = list(self._pull_all(topic))
        self._release(topic, [ack_id for ack_id, _ in pulled])
        return [message for _, message in pulled]

    def replay(self, topic: str, chosen: Callable[[HeldMessage], bool]) -> tuple[int, int]:
        topic_path = self._publisher.topic_path(self._project, topic)
        replayed, left = 0, []
        for ack_id, message in self._pull_all(topic):
            if not chosen(message):
                left.append(ack_id)
                continue
            self._publisher.publish(topic_path, message.data,
                                    **message.original_attributes()).result(
                timeout=PUBLISH_TIMEOUT_SECONDS)
            self._subscriber.acknowledge(request={"subscription": self._path(topic),
                                                  "ack_ids": [ack_id]})
            replayed += 1
        self._release(topic, left)
        return replayed, len(left)


def _held(message: Any) -> HeldMessage:
    published = message.publish_time
    stamp = datetime.fromtimestamp(published.timestamp(), UTC) if published else datetime.now(UTC)
    return HeldMessage(message_id=str(message.message_id), data=bytes(message.data),
                       attributes=dict(message.attributes), published_at=stamp)
