"""validate_file: every chunk of a file, validated and hashed on worker threads, in file order."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from event_platform.contract import EVENTS_CONTRACT
from event_platform.generator import generate_file
from event_platform.ingest.file_validation import validate_file
from event_platform.ingest.lines import FileDigest

ALLOWED = frozenset(range(1, 11))


def validated(path: Path, **options: object) -> tuple[pl.DataFrame, pl.DataFrame]:
    chunks = list(
        validate_file(
            path,
            FileDigest(),
            contract=EVENTS_CONTRACT,
            allowed_event_types=ALLOWED,
            chunk_bytes=64 * 1024,
            **options,
        )
    )
    assert len(chunks) > 1, "the file should span several chunks"
    return (
        pl.concat([chunk.valid for chunk in chunks]),
        pl.concat([chunk.rejected for chunk in chunks]),
    )


def test_the_consumer_gets_only_the_columns_it_names_with_the_same_values(
    tmp_path: Path,
) -> None:
    """Reconciliation asks for two columns; skipping the rest must not change them."""
    path = tmp_path / "events.jsonl"
    generate_file(path, 2_000, invalid_rate=0.05, duplicate_rate=0.02, seed=7)
    full_valid, full_rejected = validated(path)
    valid, rejected = validated(path, valid_columns=("line_number", "event_hash"))

    assert valid.columns == ["line_number", "event_hash"]
    assert valid.equals(full_valid.select("line_number", "event_hash"))
    assert rejected.equals(full_rejected)
    # The full output really is wider: the typed columns and the writer's keys.
    assert {"event_time", "hash_key", "first_in_chunk", "raw"} <= set(full_valid.columns)
    assert valid["line_number"].is_sorted() and len(valid) + len(rejected) == 2_000
