"""Progress of long work, told to whoever listens in this process.

The stages (ingestion, reconciliation, checks, publication) report where they are; the CLI
listens and draws a progress line, and Dagster's run log gets a line every few seconds. A stage
does not know who listens: without a listener a report costs one empty loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

# The stages a file goes through, in order.
LANDING = "landing"
FINGERPRINTING = "fingerprinting"
STORING = "storing"
COMMITTING = "committing"
RECONCILING = "reconciling"
CHECKING = "checking"
PUBLISHING = "publishing"


@dataclass(frozen=True)
class Progress:
    """Where one partition's work stands; `lines`/`bytes_done` count what is done so far."""

    partition: str
    stage: str
    lines: int = 0
    bytes_done: int = 0
    bytes_total: int = 0


Listener = Callable[[Progress], None]
_listeners: list[Listener] = []
_lock = threading.Lock()


def report(progress: Progress) -> None:
    for listener in list(_listeners):
        listener(progress)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Call `listener` with every report made in this process while the block runs."""
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)
