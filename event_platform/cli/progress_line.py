"""How `event-platform ingest` shows progress: a live line on a terminal, log lines elsewhere.

On a terminal one line is redrawn in place (stage, lines, MB/s, ETA). Written to a file or a
pipe (cron, CI, a pod's log), a line is printed at each change of stage and every
`LOG_EVERY_SECONDS` meanwhile. With `--json` nothing is shown, so stdout and stderr stay
machine-readable.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from event_platform.progress import Progress

LOG_EVERY_SECONDS = 5.0
REDRAW_EVERY_SECONDS = 0.1


def _figures(update: Progress, stage_started: float) -> str:
    parts = []
    if update.lines:
        parts.append(f"{update.lines:,} lines")
    if update.bytes_total >= 1e6:
        parts.append(f"{update.bytes_done / 1e6:,.0f}/{update.bytes_total / 1e6:,.0f} MB")
    elapsed = time.monotonic() - stage_started
    if update.bytes_done and elapsed > 0.5:
        rate = update.bytes_done / elapsed
        parts.append(f"{rate / 1e6:,.1f} MB/s")
        left = update.bytes_total - update.bytes_done
        if update.bytes_total and left > 0:
            parts.append(f"ETA {left / rate:,.0f}s")
    return ", ".join(parts)


class ProgressLine:
    """A progress listener for one CLI invocation."""

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.live = not quiet and self.stream.isatty()
        self._stage: tuple[str, str] | None = None
        self._stage_started = time.monotonic()
        self._shown_at = 0.0
        self._drawn = False

    def __call__(self, update: Progress) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        changed = (update.partition, update.stage) != self._stage
        if changed:
            self._stage = (update.partition, update.stage)
            self._stage_started = now
        every = REDRAW_EVERY_SECONDS if self.live else LOG_EVERY_SECONDS
        if not changed and now - self._shown_at < every:
            return
        self._shown_at = now
        figures = _figures(update, self._stage_started)
        text = f"{update.partition}: {update.stage}" + (f" {figures}" if figures else "")
        if self.live:
            self.stream.write("\r\033[K" + text)
            self._drawn = True
        else:
            self.stream.write(f"event-platform ingest: {text}\n")
        self.stream.flush()

    def say(self, text: str) -> None:
        """A notice that must be read (waiting, recovering): shown even with `--json`."""
        self.clear()
        self.stream.write(f"event-platform ingest: {text}\n")
        self.stream.flush()

    def clear(self) -> None:
        if self._drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._drawn = False
