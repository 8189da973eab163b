"""Pull Pub/Sub messages into landing-folder micro-batch files: at-least-once, nothing lost.

Why this order: a batch is pulled, written to `.<name>.tmp`, flushed and fsynced, renamed to its
final name (the landing sensor only looks at final names) and the directory fsynced; only then is
the batch acked. A crash anywhere before the ack means Pub/Sub redelivers the batch after the ack
deadline; the redelivered copy lands in a new file and the downstream dedup turns its events
into `duplicate_event` rejections, so the store holds each event exactly once. Nothing is acked
that is not durably on disk, so nothing is lost.

One message = one line (see `event_platform.pubsub.message_lines` for messages that contain LF).
Message contents are never logged: they carry emails and phone numbers; logs carry counts and ids.

The sensor and the standalone `event-platform consume` both call `drain`, so there is one code
path. Synchronous pull (not streaming pull) keeps every message's lifetime inside one call, which
is what a bounded sensor tick needs. `should_stop` is polled between pulls and between batches:
a shutdown (SIGTERM) writes and acks what is already pulled, then pulls nothing more.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from event_platform.pubsub.message_lines import encode_lines
from event_platform.settings import PubSubSettings

if TYPE_CHECKING:
    from google.cloud.pubsub_v1 import SubscriberClient
    from google.pubsub_v1.types import ReceivedMessage

log = logging.getLogger(__name__)

# Pub/Sub caps a pull at 1000 messages; acks are sent in chunks well under the 512 KB request cap.
MAX_PULL = 1000
# A pull waits for messages at most this long before `should_stop` is polled again, so a
# shutdown is honoured within about a second even while an idle pull is waiting.
STOP_POLL_SECONDS = 1.0
ACK_CHUNK = 1000
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


class PubSubError(Exception):
    """Pub/Sub could not be used; `str()` is one line, fit for a CLI error or a sensor skip."""


@dataclass
class DrainStats:
    """What one drain did; `pulled == written` always, `acked < written` only after an error."""

    pulled: int = 0
    written: int = 0
    acked: int = 0
    redelivered: int = 0
    batches: int = 0
    files: list[str] = field(default_factory=list)
    # True when the last pull found nothing: the subscription was empty when the drain stopped.
    exhausted: bool = False
    # Longest wait between publish and our pull among the messages pulled (None: none pulled).
    oldest_message_age_seconds: float | None = None
    max_delivery_attempt: int = 0
    seconds: float = 0.0

    def add(self, other: DrainStats) -> None:
        self.pulled += other.pulled
        self.written += other.written
        self.acked += other.acked
        self.redelivered += other.redelivered
        self.batches += other.batches
        self.files.extend(other.files)
        self.exhausted = other.exhausted
        ages = [
            a
            for a in (self.oldest_message_age_seconds, other.oldest_message_age_seconds)
            if a is not None
        ]
        self.oldest_message_age_seconds = max(ages) if ages else None
        self.max_delivery_attempt = max(self.max_delivery_attempt, other.max_delivery_attempt)

    def summary(self) -> str:
        return (
            f"pulled {self.pulled}, written {self.written} in {len(self.files)} file(s), "
            f"acked {self.acked}, redelivered {self.redelivered}"
        )


OnWritten = Callable[[Sequence["ReceivedMessage"], float], None]
ShouldStop = Callable[[], bool]


def _never() -> bool:
    return False


def make_subscriber() -> SubscriberClient:
    """A client for the emulator when `PUBSUB_EMULATOR_HOST` is set, else for GCP (ADC)."""
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import pubsub_v1

    try:
        return pubsub_v1.SubscriberClient()
    except DefaultCredentialsError as exc:
        raise PubSubError(
            "no Google credentials: set PUBSUB_EMULATOR_HOST for the emulator or configure ADC"
        ) from exc


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def call_with_retries(
    what: str, fn: Callable[[], object], *, attempts: int = 4, base_delay: float = 0.5
) -> object:
    """Retry transient failures with exponential backoff, then fail with one clear line.

    An unreachable endpoint must neither crash-loop nor hang: attempts and delays are bounded
    (defaults: 4 attempts, 0.5 + 1 + 2 s of sleep).
    """
    from google.api_core import exceptions as gexc

    transient = (
        gexc.ServiceUnavailable,
        gexc.DeadlineExceeded,
        gexc.InternalServerError,
        gexc.Aborted,
        gexc.TooManyRequests,
        gexc.Unknown,
    )
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except transient as exc:
            if attempt == attempts:
                host = os.environ.get("PUBSUB_EMULATOR_HOST")
                where = f"emulator at {host}" if host else "Google Cloud Pub/Sub"
                raise PubSubError(
                    f"{what} failed after {attempts} attempts; is the {where} reachable? "
                    f"({_one_line(exc)})"
                ) from exc
            delay = base_delay * 2 ** (attempt - 1)
            log.warning(
                "%s failed (%s); retry %d in %.1fs", what, type(exc).__name__, attempt, delay
            )
            time.sleep(delay)
        except gexc.NotFound as exc:
            raise PubSubError(
                f"{what}: not found ({_one_line(exc)}); run `event-platform pubsub-setup`"
            ) from exc
        except gexc.GoogleAPICallError as exc:
            raise PubSubError(f"{what} failed: {_one_line(exc)}") from exc
    raise AssertionError("unreachable")


def pull_batch(
    subscriber: SubscriberClient,
    subscription_path: str,
    max_messages: int,
    max_seconds: float,
    *,
    attempts: int = 4,
    should_stop: ShouldStop = _never,
) -> tuple[list[ReceivedMessage], bool]:
    """Pull until `max_messages` or `max_seconds`; also stop at the first empty pull.

    Returns the messages and whether the last pull came back empty (subscription drained).
    A stop request ends the batch before the next pull; what was pulled is returned, to be
    written and acked (dropping it would only delay it until its ack deadline).
    """
    from google.api_core import exceptions as gexc

    messages: list[ReceivedMessage] = []
    deadline = time.monotonic() + max_seconds
    waited_in_vain = False  # the last pull timed out empty
    while len(messages) < max_messages:
        if should_stop():
            return messages, False
        remaining = deadline - time.monotonic()
        if remaining <= 0.05:
            return messages, waited_in_vain
        want = min(MAX_PULL, max_messages - len(messages))
        wait = max(min(remaining, STOP_POLL_SECONDS), 0.1)

        def pull(want: int = want, wait: float = wait) -> object:
            try:
                return subscriber.pull(
                    subscription=subscription_path,
                    max_messages=want,
                    timeout=wait,
                    retry=None,
                )
            except gexc.DeadlineExceeded:
                return None  # nothing arrived within this wait

        response = call_with_retries("pull", pull, attempts=attempts)
        if response is None:
            # Nothing within this wait; while the batch's time budget lasts, poll
            # `should_stop` and wait again: together the waits are one long poll.
            waited_in_vain = True
            continue
        received = list(response.received_messages)
        if not received:
            return messages, True
        messages.extend(received)
        waited_in_vain = False
    return messages, False


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def batch_file_name(subscription: str, first_message_id: str, now: datetime) -> str:
    sub = _UNSAFE_NAME.sub("_", subscription)
    msg = _UNSAFE_NAME.sub("_", first_message_id)
    return f"pubsub-{sub}-{now.strftime('%Y%m%dT%H%M%S')}-{msg}.jsonl"


def write_batch_file(landing_dir: Path, name: str, body: bytes) -> Path:
    """Write `body` under `name` atomically and durably; never overwrite an existing file.

    A redelivered batch can get the same name (same second, same first message id); overwriting
    a file the landing sensor already ingested could hide it, so a `-N` suffix is added instead.
    `os.link` makes "create only if absent" atomic.
    """
    landing_dir.mkdir(parents=True, exist_ok=True)
    tmp = landing_dir / f".{name}.{os.getpid()}.tmp"
    stem = name.removesuffix(".jsonl")
    try:  # the temporary file goes whatever happens, a second Ctrl-C mid-write included
        with tmp.open("wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        for n in range(1000):
            final = landing_dir / (name if n == 0 else f"{stem}-{n}.jsonl")
            try:
                os.link(tmp, final)
                break
            except FileExistsError:
                continue
        else:
            raise PubSubError(f"no free file name for {name} in {landing_dir}")
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(landing_dir)
    return final


def acknowledge(
    subscriber: SubscriberClient, subscription_path: str, ack_ids: list[str], *, attempts: int = 4
) -> int:
    for start in range(0, len(ack_ids), ACK_CHUNK):
        chunk = ack_ids[start : start + ACK_CHUNK]
        call_with_retries(
            "acknowledge",
            lambda chunk=chunk: subscriber.acknowledge(
                subscription=subscription_path, ack_ids=chunk, timeout=30
            ),
            attempts=attempts,
        )
    return len(ack_ids)


def consume_once(
    subscriber: SubscriberClient,
    settings: PubSubSettings,
    *,
    on_written: OnWritten | None = None,
    attempts: int = 4,
    should_stop: ShouldStop = _never,
) -> DrainStats:
    """One micro-batch: pull, write one file, then ack. Returns its stats (maybe all zero)."""
    if not settings.subscription:
        raise PubSubError("no subscription configured: set EVENT_PLATFORM_PUBSUB_SUBSCRIPTION")
    path = subscriber.subscription_path(settings.project, settings.subscription)
    messages, exhausted = pull_batch(
        subscriber,
        path,
        settings.batch_max_messages,
        settings.batch_max_seconds,
        attempts=attempts,
        should_stop=should_stop,
    )
    stats = DrainStats(exhausted=exhausted)
    if not messages:
        return stats
    pulled_at = time.time()
    stats.pulled = len(messages)
    stats.batches = 1
    stats.redelivered = sum(1 for m in messages if m.delivery_attempt > 1)
    stats.max_delivery_attempt = max(m.delivery_attempt for m in messages)
    stats.oldest_message_age_seconds = max(
        0.0, pulled_at - min(m.message.publish_time.timestamp() for m in messages)
    )
    name = batch_file_name(settings.subscription, messages[0].message.message_id, datetime.now(UTC))
    final = write_batch_file(
        settings.landing_dir, name, encode_lines(m.message.data for m in messages)
    )
    stats.written = len(messages)
    stats.files.append(final.name)
    if on_written is not None:
        on_written(messages, time.time())
    log.info(
        "wrote %d message(s) to %s (first id %s, redelivered %d)",
        len(messages),
        final.name,
        messages[0].message.message_id,
        stats.redelivered,
    )
    stats.acked = acknowledge(subscriber, path, [m.ack_id for m in messages], attempts=attempts)
    return stats


def drain(
    subscriber: SubscriberClient,
    settings: PubSubSettings,
    *,
    max_seconds: float,
    on_written: OnWritten | None = None,
    attempts: int = 4,
    should_stop: ShouldStop = _never,
) -> DrainStats:
    """Consume batches until the subscription looks empty, `max_seconds` is spent or
    `should_stop()` turns true.

    The budget is checked before each batch, so a drain can overrun it by at most one batch
    (`batch_max_seconds` plus a write and an ack): size it to keep a sensor tick under 60 s.
    A stop request is checked before every pull, so it costs at most one pull, one write and
    one ack.
    """
    started = time.monotonic()
    total = DrainStats()
    while True:
        if should_stop():
            break
        batch = consume_once(
            subscriber, settings, on_written=on_written, attempts=attempts, should_stop=should_stop
        )
        total.add(batch)
        if batch.exhausted or time.monotonic() - started >= max_seconds:
            break
    total.seconds = time.monotonic() - started
    return total
