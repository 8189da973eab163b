"""Ingest one file: read, validate and write chunk by chunk, inside one store transaction.

This is the whole hot path and it has no Dagster import: the `validated_events` asset, the CLI
and the benchmark call it alike. Memory is bounded by the chunk size, not the file size.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from event_platform.contract import EVENTS_CONTRACT, StreamContract
from event_platform.ingest.file_validation import DEFAULT_WORKERS, validate_file
from event_platform.ingest.lines import DEFAULT_CHUNK_BYTES, FileDigest, lines_again
from event_platform.settings import (
    DEFAULT_DUCKDB_MEMORY_LIMIT,
    DEFAULT_EVENT_TYPES,
    DEFAULT_MAX_LINE_BYTES,
)
from event_platform.store.backend import Warehouse, as_warehouse
from event_platform.store.schema import DUPLICATE_REASON


@dataclass
class IngestResult:
    """What one ingestion did, in the terms the reconciliation report and the UI use."""

    source_file: str
    path: str
    file_sha256: str
    bytes: int
    lines: int
    stored: int
    rejected: int
    duplicates: int
    reason_counts: dict[str, int]
    seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)
    run_id: str = ""

    @property
    def rows_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0

    @property
    def rejection_rate(self) -> float:
        return self.rejected / self.lines if self.lines else 0.0


def ingest_file(
    path: Path,
    con: duckdb.DuckDBPyConnection | Warehouse,
    *,
    run_id: str,
    source_file: str | None = None,
    contract: StreamContract = EVENTS_CONTRACT,
    allowed_event_types: frozenset[int] = DEFAULT_EVENT_TYPES,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT,
    workers: int = DEFAULT_WORKERS,
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
    before_commit: Callable[[], None] | None = None,
) -> IngestResult:
    """Replace the partition `source_file` (default: the file name) with this file's lines.

    `con` is the DuckDB warehouse's connection or a backend (`store.backend`).
    `progress(lines_done, bytes_done)` is called after each chunk so long runs can report;
    `log` is told about the work after the last chunk (moving duplicates of other files);
    `before_commit` is called once every chunk is written, before the partition is settled
    and committed. Chunks are validated `workers` at a time and written in file order.
    """
    source_file = source_file or path.name
    started = time.perf_counter()
    stages: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    digest = FileDigest()
    chunks = validate_file(
        path,
        digest,
        contract=contract,
        allowed_event_types=allowed_event_types,
        chunk_bytes=chunk_bytes,
        max_line_bytes=max_line_bytes,
        memory_limit=memory_limit,
        workers=workers,
    )
    lines_written = 0
    # `closing`: after a failed write (rolled back first), the validating workers are stopped
    # and joined rather than left to validate the rest of the file.
    with (
        closing(chunks),
        as_warehouse(con).partition_writer(
            contract,
            source_file,
            run_id,
            datetime.now(UTC),
            # Called after the last chunk, when `digest` holds the whole file's sha256.
            reread=lambda late: lines_again(path, late, digest.sha256, chunk_bytes, max_line_bytes),
            log=log,
        ) as writer,
    ):
        for hashed in chunks:
            # Summed over workers: CPU-seconds of validation, which may exceed the wall time.
            stages["validate_hash"] += hashed.seconds
            reasons.update(_reason_counts(hashed.rejected))
            tick = time.perf_counter()
            writer.write(hashed.valid, hashed.rejected)
            stages["write"] += time.perf_counter() - tick
            lines_written += len(hashed.chunk)
            if progress:
                progress(lines_written, digest.bytes_read)
        writer.file_read(digest.sha256, digest.lines)
        if before_commit:
            before_commit()
        tick = time.perf_counter()
    stages["commit"] += time.perf_counter() - tick
    counts = writer.counts
    if counts.duplicates:
        reasons[DUPLICATE_REASON] += counts.duplicates
    return IngestResult(
        source_file=source_file,
        path=str(path),
        file_sha256=digest.sha256,
        bytes=digest.bytes_read,
        lines=digest.lines,
        stored=counts.stored,
        rejected=counts.rejected,
        duplicates=counts.duplicates,
        reason_counts=dict(reasons.most_common()),
        seconds=time.perf_counter() - started,
        stage_seconds={stage: round(seconds, 4) for stage, seconds in stages.items()},
        run_id=run_id,
    )


def _reason_counts(rejected: pl.DataFrame) -> dict[str, int]:
    if rejected.is_empty():
        return {}
    counted = rejected.select(pl.col("reasons").explode()).group_by("reasons").len()
    return dict(zip(counted["reasons"].to_list(), counted["len"].to_list(), strict=True))
