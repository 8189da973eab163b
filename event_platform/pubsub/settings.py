"""Pub/Sub settings, read from the environment like `event_platform.settings.Settings`.

Kept apart from the core `Settings` so the Pub/Sub source can be configured (or left out)
without touching the file-ingestion settings. The same values drive the emulator locally
(`PUBSUB_EMULATOR_HOST` set) and GCP in production (unset: Application Default Credentials).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from event_platform.settings import Settings

DEFAULT_PROJECT = "event-platform-local"


def _positive_int(env: dict[str, str] | os._Environ[str], name: str, default: int) -> int:
    value = int(env.get(name, str(default)))
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def _positive_float(env: dict[str, str] | os._Environ[str], name: str, default: float) -> float:
    value = float(env.get(name, str(default)))
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


@dataclass(frozen=True)
class PubSubSettings:
    """Where to pull from, how big a micro-batch file may grow, and where it lands."""

    project: str
    topic: str | None
    subscription: str | None
    landing_dir: Path
    state_dir: Path
    batch_max_messages: int = 1000
    batch_max_seconds: float = 2.0
    max_delivery_attempts: int = 5
    dead_letter_topic: str | None = None
    ack_deadline_seconds: int = 60
    # A sensor tick is killed at 60 s; the drain stops starting new batches after this budget.
    sensor_drain_seconds: float = 30.0
    # The backlog check warns when the oldest message waited longer than this before we pulled it.
    max_message_age_seconds: float = 600.0

    @property
    def dead_letter_topic_name(self) -> str | None:
        """Explicit name, else `<topic>-dead-letter`: a policy without a topic is no policy."""
        if self.dead_letter_topic:
            return self.dead_letter_topic
        return f"{self.topic}-dead-letter" if self.topic else None

    @property
    def dead_letter_subscription_name(self) -> str | None:
        """Pub/Sub drops messages published to a topic with no subscription; this keeps them."""
        name = self.dead_letter_topic_name
        return f"{name}-sub" if name else None

    @property
    def status_path(self) -> Path | None:
        """Counters shared by the sensor, the standalone consumer and the observation."""
        if not self.subscription:
            return None
        return self.state_dir / f"{self.subscription}.status.json"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> PubSubSettings:
        env = os.environ if environ is None else environ
        core = Settings.from_env(dict(env))
        batch_max_messages = _positive_int(env, "EVENT_PLATFORM_PUBSUB_BATCH_MAX_MESSAGES", 1000)
        ack_deadline = _positive_int(env, "EVENT_PLATFORM_PUBSUB_ACK_DEADLINE_SECONDS", 60)
        if not 10 <= ack_deadline <= 600:
            raise ValueError("EVENT_PLATFORM_PUBSUB_ACK_DEADLINE_SECONDS must be in 10..600")
        attempts = _positive_int(env, "EVENT_PLATFORM_PUBSUB_MAX_DELIVERY_ATTEMPTS", 5)
        if not 5 <= attempts <= 100:
            # Pub/Sub's own bounds for a dead-letter policy.
            raise ValueError("EVENT_PLATFORM_PUBSUB_MAX_DELIVERY_ATTEMPTS must be in 5..100")
        return cls(
            project=env.get("EVENT_PLATFORM_PUBSUB_PROJECT", DEFAULT_PROJECT),
            topic=env.get("EVENT_PLATFORM_PUBSUB_TOPIC") or None,
            subscription=env.get("EVENT_PLATFORM_PUBSUB_SUBSCRIPTION") or None,
            landing_dir=core.landing_dir,
            state_dir=core.data_dir / "pubsub",
            batch_max_messages=batch_max_messages,
            batch_max_seconds=_positive_float(env, "EVENT_PLATFORM_PUBSUB_BATCH_MAX_SECONDS", 2.0),
            max_delivery_attempts=attempts,
            dead_letter_topic=env.get("EVENT_PLATFORM_PUBSUB_DEAD_LETTER_TOPIC") or None,
            ack_deadline_seconds=ack_deadline,
            sensor_drain_seconds=_positive_float(
                env, "EVENT_PLATFORM_PUBSUB_SENSOR_DRAIN_SECONDS", 30.0
            ),
            max_message_age_seconds=_positive_float(
                env, "EVENT_PLATFORM_PUBSUB_MAX_MESSAGE_AGE_SECONDS", 600.0
            ),
        )
