"""Consumer counters persisted next to the data, shared by every process that drains.

The standalone consumer, the Dagster sensor and the observable source asset run in different
processes; a small JSON file (updated under an exclusive lock, replaced atomically) is what lets
the asset graph report what the consumer actually did. What it can measure is limited and named
honestly: counts pulled/written/acked/redelivered, the oldest publish-to-pull wait seen in the
last drain, whether the last drain emptied the subscription, and when a drain last ran. The true
backlog (`num_undelivered_messages`) needs Cloud Monitoring, which the emulator lacks, and peeking
by pull-without-ack would burn delivery attempts toward the dead-letter topic, so it is not done.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from event_platform.pubsub.consumer import DrainStats

COUNTERS = ("pulled", "written", "acked", "redelivered", "batches", "files", "drains")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_status(path: Path | None) -> dict[str, Any]:
    """The stored status, or an empty dict when no drain has run yet."""
    if path is None or not path.exists():
        return {}
    return json.loads(path.read_text())


def record_drain(path: Path | None, stats: DrainStats, *, source: str) -> dict[str, Any]:
    """Add one drain's stats to the totals and return the new status."""
    if path is None:
        return {}
    with _locked(path):
        status = read_status(path)
        totals = status.get("totals", dict.fromkeys(COUNTERS, 0))
        totals["pulled"] += stats.pulled
        totals["written"] += stats.written
        totals["acked"] += stats.acked
        totals["redelivered"] += stats.redelivered
        totals["batches"] += stats.batches
        totals["files"] += len(stats.files)
        totals["drains"] += 1
        # A drain that stops on its time budget with messages still coming means the consumer
        # is not keeping up; several in a row is what "backlog growing" looks like from here.
        behind = 0 if stats.exhausted else status.get("consecutive_unfinished_drains", 0) + 1
        status = {
            "totals": totals,
            "last_drain": {
                "at": time.time(),
                "source": source,
                "pulled": stats.pulled,
                "written": stats.written,
                "acked": stats.acked,
                "redelivered": stats.redelivered,
                "files": len(stats.files),
                "exhausted": stats.exhausted,
                "seconds": round(stats.seconds, 3),
                "oldest_message_age_seconds": stats.oldest_message_age_seconds,
                "max_delivery_attempt": stats.max_delivery_attempt,
            },
            "consecutive_unfinished_drains": behind,
        }
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(status, indent=2))
        os.replace(tmp, path)
        return status
