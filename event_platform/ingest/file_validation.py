"""A file's lines, validated and hashed chunk by chunk on worker threads, in file order.

Ingestion and reconciliation both need exactly this (reconciliation re-derives it from the file,
independently of what ingestion stored), so it lives here once. Each worker owns a `Validator`
and with it a private in-memory DuckDB, since a DuckDB connection must not be shared between
threads; the file is read on the consumer's thread, which keeps reads sequential.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from event_platform.contract import StreamContract
from event_platform.ingest.hashing import line_digest, settle_first_in_chunk, with_event_hash
from event_platform.ingest.lines import DEFAULT_CHUNK_BYTES, FileDigest, LineChunk, read_line_chunks
from event_platform.ingest.ordered_map import ordered_map
from event_platform.ingest.validation import Validator
from event_platform.settings import DEFAULT_DUCKDB_MEMORY_LIMIT, DEFAULT_MAX_LINE_BYTES

# Two cores here: two validating threads, while the consumer writes or classifies.
DEFAULT_WORKERS = min(2, os.cpu_count() or 1)


@dataclass(frozen=True)
class HashedChunk:
    """One chunk's verdicts: `valid` carries `event_hash` and `first_in_chunk`; both frames
    carry each line's `line_digest` (`ingest.hashing`), the valid one unless `valid_columns`
    leaves it out."""

    chunk: LineChunk
    valid: pl.DataFrame
    rejected: pl.DataFrame
    seconds: float  # worker time spent validating and hashing this chunk


def validate_file(
    path: Path,
    digest: FileDigest,
    *,
    contract: StreamContract,
    allowed_event_types: frozenset[int],
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT,
    workers: int = DEFAULT_WORKERS,
    valid_columns: Sequence[str] | None = None,
) -> Iterator[HashedChunk]:
    """Yield every chunk of `path`, validated and hashed, in file order; `digest` fills in.

    `valid_columns` names the valid rows' columns the consumer reads (default: all of them);
    the workers compute only those.
    """
    validators: queue.SimpleQueue[Validator] = queue.SimpleQueue()
    created = [Validator(contract, allowed_event_types, memory_limit) for _ in range(workers)]
    for validator in created:
        validators.put(validator)

    def work(chunk: LineChunk) -> HashedChunk:
        # At most `workers` tasks run at once, so a validator is always free.
        validator = validators.get()
        try:
            started = time.perf_counter()
            planned, rejected = validator.validate_lazy(chunk)
            planned = with_event_hash(planned).with_columns(line_digest())
            if valid_columns is not None:
                planned = planned.select(valid_columns)
            valid = settle_first_in_chunk(planned.collect())
            rejected = rejected.with_columns(line_digest("raw_line"))
            seconds = time.perf_counter() - started
        finally:
            validators.put(validator)
        return HashedChunk(chunk, valid, rejected, seconds)

    try:
        yield from ordered_map(
            work,
            read_line_chunks(path, digest, chunk_bytes, max_line_bytes),
            workers=workers,
            name="validate",
        )
    finally:
        for validator in created:
            validator.close()
