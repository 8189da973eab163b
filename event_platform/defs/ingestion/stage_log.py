"""A step's progress: every update to this process' listeners, a line in the run log now and then.

A chunk is done every fraction of a second; the run log wants a line every few seconds, the CLI
wants every update to redraw its progress line (`event_platform.progress`).
"""

from __future__ import annotations

import time

import dagster as dg

from event_platform import progress

LOG_EVERY_SECONDS = 5.0


class StageLog:
    """Called as `log(lines_done, bytes_done)`; `switch(stage)` moves to the next stage."""

    def __init__(self, context: dg.AssetExecutionContext, stage: str, bytes_total: int) -> None:
        self.context = context
        self.partition = context.partition_key
        self.stage = stage
        self.bytes_total = bytes_total
        self.lines = 0
        self.bytes_done = 0
        self._logged_at = time.monotonic()
        progress.report(progress.Progress(self.partition, stage, 0, 0, bytes_total))

    def __call__(self, lines: int, bytes_done: int) -> None:
        self.lines, self.bytes_done = lines, bytes_done
        progress.report(
            progress.Progress(self.partition, self.stage, lines, bytes_done, self.bytes_total)
        )
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_SECONDS:
            self._logged_at = now
            share = f" ({bytes_done / self.bytes_total:.0%})" if self.bytes_total else ""
            counted = f"{lines:,} lines, " if lines else ""
            self.context.log.info(
                f"{self.partition}: {self.stage} {counted}"
                f"{bytes_done / 1e6:,.0f} of {self.bytes_total / 1e6:,.0f} MB{share}"
            )

    def switch(self, stage: str) -> None:
        self.stage = stage
        self.context.log.info(f"{self.partition}: {stage}")
        progress.report(
            progress.Progress(self.partition, stage, self.lines, self.bytes_done, self.bytes_total)
        )
