"""Create the Pub/Sub resources and publish files: the operator side of the Pub/Sub source.

`setup` is idempotent so it can run at every deploy. The dead-letter topic gets its own
subscription because Pub/Sub drops messages published to a topic that has none: without it a
message that exhausted its delivery attempts would be lost. On GCP the Pub/Sub service agent
also needs publisher on the dead-letter topic and subscriber on the subscription; that IAM
grant is a deploy step, not done here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from event_platform.pubsub.consumer import PubSubError, call_with_retries
from event_platform.settings import PubSubSettings

log = logging.getLogger(__name__)


def setup(settings: PubSubSettings, *, attempts: int = 4) -> list[str]:
    """Create topic, dead-letter topic, subscription (with dead-letter policy) and the
    dead-letter subscription when missing. Returns one "created"/"exists" line per resource."""
    from google.api_core import exceptions as gexc
    from google.cloud import pubsub_v1
    from google.pubsub_v1.types import DeadLetterPolicy

    if not settings.topic or not settings.subscription:
        raise PubSubError(
            "set EVENT_PLATFORM_PUBSUB_TOPIC and EVENT_PLATFORM_PUBSUB_SUBSCRIPTION first"
        )
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    project = settings.project
    topic = publisher.topic_path(project, settings.topic)
    dl_topic = publisher.topic_path(project, settings.dead_letter_topic_name)
    subscription = subscriber.subscription_path(project, settings.subscription)
    dl_subscription = subscriber.subscription_path(project, settings.dead_letter_subscription_name)
    report: list[str] = []

    def create(kind: str, name: str, fn) -> None:
        def attempt() -> None:
            try:
                fn()
                report.append(f"created {kind} {name}")
            except gexc.AlreadyExists:
                report.append(f"exists  {kind} {name}")

        call_with_retries(f"create {kind}", attempt, attempts=attempts)

    create("topic", topic, lambda: publisher.create_topic(name=topic, timeout=30))
    create("topic", dl_topic, lambda: publisher.create_topic(name=dl_topic, timeout=30))
    create(
        "subscription",
        subscription,
        lambda: subscriber.create_subscription(
            request={
                "name": subscription,
                "topic": topic,
                "ack_deadline_seconds": settings.ack_deadline_seconds,
                "dead_letter_policy": DeadLetterPolicy(
                    dead_letter_topic=dl_topic,
                    max_delivery_attempts=settings.max_delivery_attempts,
                ),
            },
            timeout=30,
        ),
    )
    create(
        "subscription",
        dl_subscription,
        lambda: subscriber.create_subscription(
            request={"name": dl_subscription, "topic": dl_topic}, timeout=30
        ),
    )
    return report


def file_lines(path: Path) -> Iterator[bytes]:
    """Each LF-separated line of the file, raw bytes, without its LF (a final LF adds none)."""
    with path.open("rb") as handle:
        for line in handle:
            yield line[:-1] if line.endswith(b"\n") else line


@dataclass
class PublishStats:
    published: int
    skipped_empty: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.published / self.seconds if self.seconds > 0 else 0.0


def publish_lines(
    project: str, topic: str, lines: Iterator[bytes], *, timeout: float = 60.0
) -> PublishStats:
    """Publish each line as one message through the batching publisher.

    Empty lines are skipped and counted: Pub/Sub rejects a message with neither data nor
    attributes. Flow control blocks instead of buffering the whole file in memory.
    """
    from google.cloud import pubsub_v1
    from google.cloud.pubsub_v1.types import BatchSettings, PublisherOptions, PublishFlowControl

    publisher = pubsub_v1.PublisherClient(
        batch_settings=BatchSettings(max_messages=1000, max_bytes=5_000_000, max_latency=0.05),
        publisher_options=PublisherOptions(
            flow_control=PublishFlowControl(
                message_limit=20_000,
                byte_limit=50_000_000,
                limit_exceeded_behavior=pubsub_v1.types.LimitExceededBehavior.BLOCK,
            )
        ),
    )
    topic_path = publisher.topic_path(project, topic)
    started = time.monotonic()
    futures = []
    skipped = 0
    try:
        for line in lines:
            if not line:
                skipped += 1
                continue
            futures.append(publisher.publish(topic_path, line))
        for future in futures:
            future.result(timeout=timeout)
    except TimeoutError as exc:
        raise PubSubError(f"publish to {topic_path} timed out; is Pub/Sub reachable?") from exc
    except Exception as exc:
        from google.api_core import exceptions as gexc

        if isinstance(exc, gexc.GoogleAPICallError):
            first = (str(exc).splitlines() or [""])[0]
            raise PubSubError(f"publish to {topic_path} failed: {first}") from exc
        raise
    finally:
        publisher.stop()
    return PublishStats(len(futures), skipped, time.monotonic() - started)
