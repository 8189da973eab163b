"""Turn the consumer's status file into asset metadata and a backlog verdict.

What is measured (and named so in the metadata): counters from the drains that actually ran, the
oldest publish-to-pull wait in the last drain, whether the last drain emptied the subscription,
and how long ago a drain ran. What is not: the true backlog size. The emulator has no Cloud
Monitoring, and peeking (pull without ack) would burn delivery attempts toward the dead-letter
topic. "Backlog growing" is therefore inferred: several drains in a row that stopped on their time
budget with messages still flowing, or messages that waited too long before we pulled them.
"""

from __future__ import annotations

import time
from typing import Any

from event_platform.settings import PubSubSettings

# Drains that hit their time budget in a row before the backlog counts as growing.
MAX_UNFINISHED_DRAINS = 3
# No drain for this long while a subscription is configured means nobody is consuming.
MAX_SECONDS_WITHOUT_DRAIN = 15 * 60

MEASUREMENT_NOTE = (
    "Counts come from the consumer's own drains. Backlog size is NOT measured (no Cloud Monitoring "
    "on the emulator; peeking would burn delivery attempts); it is inferred from drains that hit "
    "their time budget and from the oldest publish-to-pull wait."
)


def status_metadata(status: dict[str, Any], settings: PubSubSettings) -> dict[str, Any]:
    totals = status.get("totals", {})
    last = status.get("last_drain", {})
    age = last.get("oldest_message_age_seconds")
    at = last.get("at")
    return {
        "subscription": settings.subscription or "(not configured)",
        "project": settings.project,
        "total_pulled": int(totals.get("pulled", 0)),
        "total_written": int(totals.get("written", 0)),
        "total_acked": int(totals.get("acked", 0)),
        "total_redelivered": int(totals.get("redelivered", 0)),
        "total_files": int(totals.get("files", 0)),
        "last_drain_pulled": int(last.get("pulled", 0)),
        "last_drain_exhausted": bool(last.get("exhausted", False)),
        "last_drain_source": str(last.get("source", "")),
        "last_drain_seconds_ago": round(time.time() - at, 1) if at else -1.0,
        "last_oldest_message_age_seconds": round(age, 3) if age is not None else -1.0,
        "consecutive_unfinished_drains": int(status.get("consecutive_unfinished_drains", 0)),
        "measured": MEASUREMENT_NOTE,
    }


def backlog_verdict(status: dict[str, Any], settings: PubSubSettings) -> tuple[bool, str]:
    """(passed, why): fails on signs that messages are piling up or waiting too long."""
    if not settings.subscription:
        return True, "no subscription configured"
    last = status.get("last_drain")
    if not last:
        return False, "no drain recorded yet: is the sensor or `event-platform consume` running?"
    problems = []
    since = time.time() - last["at"]
    if since > MAX_SECONDS_WITHOUT_DRAIN:
        problems.append(f"last drain {since:.0f}s ago")
    unfinished = status.get("consecutive_unfinished_drains", 0)
    if unfinished >= MAX_UNFINISHED_DRAINS:
        problems.append(
            f"{unfinished} drains in a row stopped with messages left (backlog growing)"
        )
    age = last.get("oldest_message_age_seconds")
    if age is not None and age > settings.max_message_age_seconds:
        limit = settings.max_message_age_seconds
        problems.append(f"oldest message waited {age:.0f}s before pull (> {limit:.0f}s)")
    if last.get("acked", 0) < last.get("written", 0):
        problems.append("last drain wrote messages it could not ack (they will be redelivered)")
    if problems:
        return False, "; ".join(problems)
    return True, "consumer keeping up"
