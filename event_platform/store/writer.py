"""Writes one partition (one source file) into the store atomically.

The writer opens a transaction, deletes the partition's rows from `events` and
`rejected_events`, streams each validated chunk in with `INSERT ... SELECT` from Arrow, and
commits at the end: a crash or a failed run rolls back to the previous state of the partition,
and a re-run replaces rather than doubles it.

Duplicates are decided inside the same transaction, in two steps, so that the cost of the
search does not grow with the warehouse once per chunk:
- **Within the file**, per chunk: a line is a duplicate when an earlier line of the file has
  its hash. Each chunk probes `file_keys`, a temporary table of this file's 64-bit keys so far,
  so the probe costs the size of the file, not of the warehouse.
- **Against other files**, once, when the file has gone past: one join of this file's keys
  with `event_hash_keys` (a 64-bit integer per stored event). Lines found there are moved from
  `events` to `rejected_events`, with their raw text read from the file again (`reread`), one
  slice of the key space at a time, so that a file of nothing but duplicates stays within
  DuckDB's memory cap.
  Probing every chunk against the whole warehouse cost 19 ms per chunk at 5M stored events and
  0.55 s at 200M, 50 times over for a 5M-line file (docs/performance.md).

Since this partition's old rows were deleted first, re-ingesting a file is never a duplicate of
itself. Keys only nominate candidates (a 1-in-2^64 collision is possible); the full hashes
decide.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import polars as pl

from event_platform.contract import StreamContract
from event_platform.store.arrow import arrow_view
from event_platform.store.key_slices import key_slices
from event_platform.store.schema import DUPLICATE_REASON, hash_key_sql

# A valid row is stored when it is its hash's first line in the chunk and no earlier line has it.
_STORED = "first_in_chunk AND event_hash NOT IN (SELECT event_hash FROM already_stored)"

# Lines of this file whose values another file's stored event has: nominated by key, decided on
# the full hash. `event_hash_keys` holds no key of this file yet (deleted on entry, added last).
# The join builds on this file's keys and scans the warehouse's keys once.
_SHARED_KEYS = """
CREATE OR REPLACE TEMP TABLE shared_keys AS
SELECT DISTINCT k.hash_key, k.source_file
FROM main.event_hash_keys k SEMI JOIN file_keys f ON k.hash_key = f.hash_key
"""
# Run once per slice of the key space (`store/key_slices.py`): over a whole file of duplicates
# (the same content landed under a second name), one statement for all keys needed more than
# DuckDB's 256 MB cap at 1M lines.
_ACROSS_FILES = f"""
CREATE OR REPLACE TEMP TABLE late_slice AS
WITH shared AS (
    SELECT hash_key, source_file FROM shared_keys WHERE hash_key BETWEEN $low AND $high
),
theirs AS (
    SELECT DISTINCT o.event_hash FROM main.events o
    WHERE o.source_file IN (SELECT source_file FROM shared)
      AND {hash_key_sql("o.event_hash")} IN (SELECT hash_key FROM shared)
)
SELECT f.line_number
FROM file_keys f JOIN main.events e
  ON e.ingested_at = $now AND e.source_file = $source_file AND e.line_number = f.line_number
WHERE f.hash_key IN (SELECT hash_key FROM shared)
  AND e.event_hash IN (SELECT event_hash FROM theirs)
"""

# A valid line that is a duplicate keeps its text in `rejected_events`; `{rows}` holds
# `line_number` and `line`. Used per chunk, and for the lines found after the last chunk.
_INSERT_DUPLICATES = """
INSERT INTO main.rejected_events
SELECT $source_file, line_number, line, [$reason], $now, $run_id
FROM {rows}
"""

# Reads the listed lines' text again: yields frames of `line_number` and `line`.
Reread = Callable[[pl.Series], Iterator[pl.DataFrame]]


@dataclass
class WriteCounts:
    stored: int = 0
    rejected: int = 0
    duplicates: int = 0


class PartitionWriter:
    """Use as a context manager: settle duplicates across files and commit on clean exit, roll
    back on any exception (including one while settling)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        contract: StreamContract,
        source_file: str,
        run_id: str,
        now: datetime,
        *,
        reread: Reread,
    ) -> None:
        self.con = con
        self.contract = contract
        # Stored as naive UTC, as every other timestamp of the warehouse. Bound tz-aware, DuckDB
        # would convert it to the session's time zone, i.e. the machine's local time.
        if now.tzinfo is not None:
            now = now.astimezone(UTC).replace(tzinfo=None)
        self.params = {"source_file": source_file, "run_id": run_id, "now": now}
        self.counts = WriteCounts()
        self.reread = reread
        self._stored_columns = [f.name for f in contract.scalar_fields]

    def __enter__(self) -> PartitionWriter:
        self.con.execute("BEGIN TRANSACTION")
        source = {"source_file": self.params["source_file"]}
        self.con.execute("DELETE FROM main.events WHERE source_file = $source_file", source)
        self.con.execute(
            "DELETE FROM main.rejected_events WHERE source_file = $source_file", source
        )
        self.con.execute(
            "DELETE FROM main.event_hash_keys WHERE source_file = $source_file", source
        )
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE file_keys (hash_key UBIGINT, line_number BIGINT)"
        )
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                self._settle_across_files()
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            self.con.execute("COMMIT")
        else:
            self.con.execute("ROLLBACK")

    def write(self, valid: pl.DataFrame, rejected: pl.DataFrame) -> None:
        """Append one validated chunk.

        Every result is read with fetchall: after `fetchone` duckdb 2.0 keeps the result open,
        and a caller's `register` on this connection would be refused.

        `valid` carries `event_hash`, `hash_key`, `first_in_chunk` (see
        `event_platform.hashing`) and its `line` text, which a duplicate keeps in
        `rejected_events`.
        """
        columns = ", ".join(self._stored_columns)
        # The SQL reads these two locals through DuckDB's replacement scan. `con.register` would
        # create a temporary view per chunk, and inside this long transaction a dropped view
        # (with its Arrow data) lives until COMMIT: memory grew ~250 MB per chunk that way.
        valid_chunk = arrow_view(valid)  # noqa: F841 - read by the SQL below
        rejected_chunk = arrow_view(rejected)  # noqa: F841 - read by the SQL below
        [(candidates,)] = self.con.execute(
            "SELECT count(*) FROM file_keys k SEMI JOIN valid_chunk v ON k.hash_key = v.hash_key"
        ).fetchall()
        if candidates:
            # Hashes of this chunk that earlier lines of this file have, on the full hash. Only
            # this run's rows carry `ingested_at = $now`: the zone maps on that timestamp skip
            # every older row group, so this does not scan the warehouse.
            self.con.execute(
                """
                CREATE OR REPLACE TEMP TABLE already_stored AS
                SELECT DISTINCT e.event_hash
                FROM main.events e SEMI JOIN valid_chunk v ON e.event_hash = v.event_hash
                WHERE e.ingested_at = $now AND e.source_file = $source_file
                """,
                {"source_file": self.params["source_file"], "now": self.params["now"]},
            )
        else:
            self.con.execute("CREATE OR REPLACE TEMP TABLE already_stored (event_hash VARCHAR)")
        stored = self.con.execute(
            f"""
            INSERT INTO main.events (event_hash, {columns}, source_file, line_number,
                                     ingested_at, run_id)
            SELECT event_hash, {columns}, $source_file, line_number, $now, $run_id
            FROM valid_chunk WHERE {_STORED}
            """,
            self.params,
        ).fetchall()[0][0]
        self.con.execute(
            f"INSERT INTO file_keys SELECT hash_key, line_number FROM valid_chunk WHERE {_STORED}"
        )
        duplicates = self.con.execute(
            _INSERT_DUPLICATES.format(rows=f"valid_chunk WHERE NOT ({_STORED})"),
            {**self.params, "reason": DUPLICATE_REASON},
        ).fetchall()[0][0]
        rejected = self.con.execute(
            """
            INSERT INTO main.rejected_events
            SELECT $source_file, line_number, raw_line, reasons, $now, $run_id
            FROM rejected_chunk
            """,
            self.params,
        ).fetchall()[0][0]
        self.counts.stored += stored
        self.counts.duplicates += duplicates
        self.counts.rejected += rejected

    def _settle_across_files(self) -> None:
        """Move lines that duplicate another file's stored events to `rejected_events`, then
        publish this file's keys."""
        source = {"source_file": self.params["source_file"]}
        self.con.execute(_SHARED_KEYS)
        [(shared,)] = self.con.execute("SELECT count(*) FROM shared_keys").fetchall()
        if shared:
            self._move_to_duplicates(self._remove_late_duplicates(shared))
        self.con.execute(
            "INSERT INTO main.event_hash_keys SELECT $source_file, hash_key FROM file_keys", source
        )
        self.con.execute("DROP TABLE IF EXISTS already_stored")
        self.con.execute("DROP TABLE IF EXISTS shared_keys")
        self.con.execute("DROP TABLE IF EXISTS late_slice")
        self.con.execute("DROP TABLE file_keys")

    def _remove_late_duplicates(self, shared: int) -> pl.Series:
        """Remove from this file's events and keys every line that another file's stored event
        duplicates, one slice of the 64-bit key space at a time; return their line numbers."""
        where = {"source_file": self.params["source_file"], "now": self.params["now"]}
        late: list[pl.Series] = []
        moved = 0
        for low, high in key_slices(shared):
            self.con.execute(_ACROSS_FILES, {**where, "low": low, "high": high})
            late.append(self.con.sql("SELECT line_number FROM late_slice").pl().to_series())
            [(removed,)] = self.con.execute(
                """
                DELETE FROM main.events
                WHERE ingested_at = $now AND source_file = $source_file
                  AND line_number IN (SELECT line_number FROM late_slice)
                """,
                where,
            ).fetchall()
            moved += removed
            self.con.execute(
                "DELETE FROM file_keys WHERE line_number IN (SELECT line_number FROM late_slice)"
            )
        lines = pl.concat(late)
        if moved != len(lines):
            # Never commit a half-moved line: the transaction rolls back.
            raise RuntimeError(
                f"{len(lines)} lines duplicate other files, but {moved} stored rows were removed"
            )
        return lines

    def _move_to_duplicates(self, late: pl.Series) -> None:
        """Keep the removed lines in `rejected_events` as duplicates, their text read again."""
        if late.is_empty():
            return
        kept = 0
        for texts in self.reread(late):
            late_lines = arrow_view(texts)  # noqa: F841 - read by the SQL below
            kept += len(texts)
            self.con.execute(
                _INSERT_DUPLICATES.format(rows="late_lines"),
                {**self.params, "reason": DUPLICATE_REASON},
            )
        if kept != len(late):
            raise RuntimeError(f"{len(late)} lines duplicate other files, but {kept} were re-read")
        self.counts.stored -= len(late)
        self.counts.duplicates += len(late)
