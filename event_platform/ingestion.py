"""Ingest one file: read, validate and write chunk by chunk, inside one store transaction.

This is the whole hot path and it has no Dagster import: the `validated_events` asset, the CLI
and the benchmark call it alike. Memory is bounded by the chunk size, not the file size.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from event_platform.contract import EVENTS_CONTRACT, StreamContract
from event_platform.hashing import with_event_hash
from event_platform.lines import DEFAULT_CHUNK_BYTES, FileDigest, read_line_chunks
from event_platform.prefetch import prefetch
from event_platform.store.schema import DUPLICATE_REASON
from event_platform.store.writer import PartitionWriter
from event_platform.validation import Validator


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
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    source_file: str | None = None,
    contract: StreamContract = EVENTS_CONTRACT,
    allowed_event_types: frozenset[int] = frozenset(range(1, 11)),
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    progress: Callable[[int, int], None] | None = None,
) -> IngestResult:
    """Replace the partition `source_file` (default: the file name) with this file's lines.

    `progress(lines_done, bytes_done)` is called after each chunk so long runs can report.
    """
    source_file = source_file or path.name
    started = time.perf_counter()
    stages: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    digest = FileDigest()
    validator = Validator(contract, allowed_event_types)

    def validated_chunks():
        """Read and validate on the prefetch thread; time spent there is `validate`."""
        for chunk in read_line_chunks(path, digest, chunk_bytes):
            tick = time.perf_counter()
            validated = validator.validate(chunk)
            hashed = with_event_hash(validator.connection, validated.valid, contract)
            reasons.update(_reason_counts(validated.rejected))
            stages["read_validate_hash"] += time.perf_counter() - tick
            yield hashed, validated.rejected

    try:
        with PartitionWriter(con, contract, source_file, run_id, datetime.now(UTC)) as writer:
            for valid, rejected in prefetch(validated_chunks()):
                tick = time.perf_counter()
                writer.write(valid, rejected)
                stages["write"] += time.perf_counter() - tick
                if progress:
                    progress(digest.lines, digest.bytes_read)
            tick = time.perf_counter()
        stages["commit"] += time.perf_counter() - tick
    finally:
        validator.close()
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
