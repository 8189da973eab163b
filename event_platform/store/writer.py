"""Writes one partition (one source file) into the store atomically.

One transaction per partition: delete its old rows, insert each validated chunk from Arrow,
commit. A crash or failed run rolls back to the partition's previous state, and a re-run
replaces rather than doubles it; since the old rows go first, a file never duplicates itself.

Duplicates are decided in the same transaction, cheapest first. Repeats within a chunk are
caught as it is written (`first_in_chunk`). Repeats of an earlier chunk are caught by probing
`file_keys` while the file is shorter than `PROBE_KEYS_LIMIT`; past it, probing every chunk
would be quadratic in the file, so they are settled once after the last chunk. Lines stored in
other files are settled once after the last chunk too (`store/other_files.py`), not probed per
chunk, so a large warehouse is not paid for per chunk. Moving a line after the fact costs a
re-read and makes COMMIT rewrite the partition (DuckDB rewrites a transaction's row groups
once any of its own inserts is deleted), which is why the probe stays while it is cheap.

64-bit keys only nominate candidates; the full hashes decide. No statement holds more than one
join, so DuckDB can spill each and a file of nothing but duplicates stays within the memory
cap. Figures for all of this: docs/performance.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import polars as pl

from event_platform.contract import StreamContract
from event_platform.store.arrow import arrow_view
from event_platform.store.other_files import STORED_IN_OTHERS, files_sharing_keys
from event_platform.store.tables import (
    DUPLICATE_REASON,
    EVENT_HASH_KEYS,
    EVENTS,
    INGESTIONS,
    REJECTED_EVENTS,
)

# While `file_keys` holds at most this many keys, each chunk probes it: a probe stays cheap and
# the table stays well inside the default memory cap. `statement_timeline.py
# --probe-keys-limit` sweeps it (docs/performance.md).
PROBE_KEYS_LIMIT = 4_000_000
# A valid row of a probed chunk is stored when it is its hash's first line in the chunk and no
# earlier line has it; in a chunk past the limit, when it is the first in the chunk.
_PROBED = "first_in_chunk AND event_hash NOT IN (SELECT event_hash FROM already_stored)"
_UNPROBED = "first_in_chunk"

# Lines of unprobed chunks that repeat an earlier line, one statement and one join (or aggregate)
# each. Only this run's rows carry `ingested_at = $now`: the zone maps on that timestamp skip
# every older row group. A sound file has no repeated key, and the first statement ends it.
_REPEATED_KEYS = """
CREATE OR REPLACE TEMP TABLE repeated_keys AS
SELECT hash_key FROM file_keys GROUP BY hash_key HAVING count(*) > 1
"""
_REPEATED_LINES = """
CREATE OR REPLACE TEMP TABLE repeated_lines AS
SELECT line_number FROM file_keys SEMI JOIN repeated_keys USING (hash_key)
"""
_REPEATED_EVENTS = """
CREATE OR REPLACE TEMP TABLE repeated_events AS
SELECT line_number, event_hash FROM main.events SEMI JOIN repeated_lines USING (line_number)
WHERE ingested_at = $now AND source_file = $source_file
"""
_FIRST_LINES = """
CREATE OR REPLACE TEMP TABLE first_lines AS
SELECT event_hash, min(line_number) AS first FROM repeated_events GROUP BY event_hash
"""
# Keys only nominate: a line is late when its full hash has an earlier line.
_REPEATED_LATE = """
INSERT INTO late_lines
SELECT r.line_number FROM repeated_events r JOIN first_lines f USING (event_hash)
WHERE r.line_number > f.first
"""

# This file's stored lines whose full hash one of the files sharing its keys has stored
# (`store/other_files.py`). `event_hash_keys` holds no key of this file yet (deleted on entry,
# added last), so the file never nominates itself. A line may also repeat an earlier line of
# the file; it is moved once.
_ELSEWHERE = """
CREATE OR REPLACE TEMP TABLE elsewhere_lines AS
SELECT line_number FROM main.events
WHERE ingested_at = $now AND source_file = $source_file
  AND event_hash IN ({stored_in_others})
"""
_ELSEWHERE_LATE = (
    "INSERT INTO late_lines SELECT line_number FROM elsewhere_lines "
    "ANTI JOIN late_lines USING (line_number)"
)
_SETTLE_TABLES = (
    "already_stored",
    "repeated_keys",
    "repeated_lines",
    "repeated_events",
    "first_lines",
    "elsewhere_lines",
    "late_lines",
    "late_rows",
    "file_keys",
)

# Removes one range of the late lines from this run's events. This run's rows were stored in
# line order, so their zone maps skip every row group outside the range. One DELETE of every
# late line of a large file of duplicates runs out of memory under the cap; a range does not.
_DELETE_LATE = """
DELETE FROM main.events
WHERE ingested_at = $now AND source_file = $source_file AND line_number BETWEEN $low AND $high
  AND line_number IN (SELECT line_number FROM late_lines WHERE line_number BETWEEN $low AND $high)
"""
DELETE_BATCH_LINES = 1_000_000
_LATE_EXTENT = "SELECT count(*), min(line_number), max(line_number) FROM late_lines"
_LATE_IN_RANGE = (
    "SELECT line_number FROM late_lines WHERE line_number BETWEEN $low AND $high "
    "ORDER BY line_number"
)

# A valid line that is a duplicate keeps its exact bytes in `rejected_events`, with its ledger
# digest and its event hash, so that reconciliation proves it without parsing the line again;
# `{rows}` holds `line_number`, `raw`, `line_digest` and `event_hash`. Used per chunk, and for
# the lines found after the last chunk.
_INSERT_DUPLICATES = REJECTED_EVENTS.insert_sql(
    "SELECT $source_file, line_number, raw, [$reason], $now, $run_id, line_digest, event_hash "
    "FROM {rows}"
)
# The ledger columns of the late lines, kept before their events are deleted.
_KEEP_LATE = """
INSERT INTO late_rows
SELECT line_number, line_digest, event_hash FROM main.events
WHERE ingested_at = $now AND source_file = $source_file AND line_number BETWEEN $low AND $high
  AND line_number IN (SELECT line_number FROM late_lines WHERE line_number BETWEEN $low AND $high)
"""

# The `events` columns a run's parameters fill; the others come from the validated chunk.
_EVENTS_FROM_PARAMETERS = {
    "source_file": "$source_file",
    "ingested_at": "$now",
    "run_id": "$run_id",
}


def _events_select(contract: StreamContract) -> str:
    """The select list of an `events` insert from a validated chunk, in the spec's order.

    A column neither the chunk nor the run provides is NULL, as an insert naming fewer columns
    would leave it; a contract field `events` lacks is refused here rather than mid-run.
    """
    chunk = {"event_hash", "line_number", "line_digest", *(f.name for f in contract.scalar_fields)}
    unknown = sorted(chunk - set(EVENTS.column_names))
    if unknown:
        raise ValueError(f"contract {contract.name} names columns events lacks: {unknown}")
    return ", ".join(
        _EVENTS_FROM_PARAMETERS.get(name, name if name in chunk else "NULL")
        for name in EVENTS.column_names
    )


# Reads lines again: given their numbers in ascending batches (`lines.lines_again`), yields
# frames of `line_number` and `raw`.
Reread = Callable[[Iterator[pl.Series]], Iterator[pl.DataFrame]]


@dataclass
class WriteCounts:
    stored: int = 0
    rejected: int = 0
    duplicates: int = 0


class PartitionWriter:
    """Use as a context manager: settle duplicates after the last chunk and commit on clean
    exit, roll back on any exception (including one while settling)."""

    # Where the settle finds the full hashes other files stored; a backend whose other files'
    # rows are not in `main.events` names its own query (same parameters).
    stored_in_others: str = STORED_IN_OTHERS

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        contract: StreamContract,
        source_file: str,
        run_id: str,
        now: datetime,
        *,
        reread: Reread,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.con = con
        self.contract = contract
        # Stored as naive UTC, as every other timestamp of the warehouse. Bound tz-aware, DuckDB
        # would convert it to the session's time zone, i.e. the machine's local time.
        if now.tzinfo is not None:
            now = now.astimezone(UTC).replace(tzinfo=None)
        self.params = {"source_file": source_file, "run_id": run_id, "now": now}
        # What picks out this run's rows of `events` (DuckDB refuses unused named parameters).
        self._this_run = {"source_file": source_file, "now": now}
        self.counts = WriteCounts()
        self.reread = reread
        # Told when the settle after the last chunk has lines to move: for a file of nothing but
        # duplicates that takes as long as the first pass, with no chunk progress to show.
        self.log = log
        self._insert_events = EVENTS.insert_sql(
            f"SELECT {_events_select(contract)} FROM valid_chunk WHERE {{stored_when}}"
        )
        # Whether a chunk went unprobed: then the settle looks for repeats of earlier chunks.
        self._unprobed = False
        # (sha256, lines) of the whole file, told once its last chunk is written.
        self._file: tuple[str, int] | None = None

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
        self.con.execute("DELETE FROM main.ingestions WHERE source_file = $source_file", source)
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE file_keys (hash_key UBIGINT, line_number BIGINT)"
        )
        # The chunks' INSERTs run on one DuckDB thread: the validating workers already keep
        # the cores busy, and a parallel INSERT of one chunk costs more CPU than it saves in
        # wall time. The settle after the last chunk gets the threads back.
        [(self._threads,)] = self.con.execute("SELECT current_setting('threads')").fetchall()
        self.con.execute("SET threads = 1")
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            # First: a failed statement aborts the transaction, and DuckDB refuses even a SET
            # until it is rolled back, which would hide the error that failed it.
            self.con.execute("ROLLBACK")
            self._restore_threads()
            return
        self._restore_threads()
        try:
            self._settle()
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def _restore_threads(self) -> None:
        self.con.execute(f"SET threads = {int(self._threads)}")

    def write(self, valid: pl.DataFrame, rejected: pl.DataFrame) -> None:
        """Append one validated chunk.

        Every result is read with fetchall, not fetchone (see `event_platform.store`).

        `valid` carries `event_hash`, `hash_key`, `first_in_chunk`, `line_digest` (see
        `event_platform.ingest.hashing`) and its `raw` bytes, which a duplicate keeps in
        `rejected_events`; `rejected` carries `line_digest` too.
        """
        # The SQL reads these two locals through DuckDB's replacement scan. `con.register` would
        # create a temporary view per chunk, and inside this long transaction a dropped view
        # (with its Arrow data) lives until COMMIT, so memory would grow with every chunk.
        valid_chunk = arrow_view(valid)
        rejected_chunk = arrow_view(rejected)  # noqa: F841 - read by the SQL below
        stored_when = _PROBED if self._probe(valid_chunk) else _UNPROBED
        stored = self.con.execute(
            self._insert_events.format(stored_when=stored_when), self.params
        ).fetchall()[0][0]
        self.con.execute(
            f"INSERT INTO file_keys SELECT hash_key, line_number FROM valid_chunk "
            f"WHERE {stored_when}"
        )
        duplicates = self.con.execute(
            _INSERT_DUPLICATES.format(rows=f"valid_chunk WHERE NOT ({stored_when})"),
            {**self.params, "reason": DUPLICATE_REASON},
        ).fetchall()[0][0]
        rejected = self.con.execute(
            REJECTED_EVENTS.insert_sql(
                "SELECT $source_file, line_number, raw_line, reasons, $now, $run_id, "
                "line_digest, NULL FROM rejected_chunk"
            ),
            self.params,
        ).fetchall()[0][0]
        self.counts.stored += stored
        self.counts.duplicates += duplicates
        self.counts.rejected += rejected

    def _probe(self, valid_chunk: object) -> bool:
        """Fill `already_stored` with the chunk's hashes that earlier lines of the file have,
        while `file_keys` is small enough to scan per chunk; False once it is not.

        The SQL reads `valid_chunk` by that name, through DuckDB's replacement scan. Until the
        settle, `file_keys` holds one key per stored line, so the stored count is its size.
        """
        if self.counts.stored > PROBE_KEYS_LIMIT:
            self._unprobed = True
            return False
        [(candidates,)] = self.con.execute(
            "SELECT count(*) FROM file_keys k SEMI JOIN valid_chunk v ON k.hash_key = v.hash_key"
        ).fetchall()
        if candidates:
            # On the full hash. Only this run's rows carry `ingested_at = $now`: the zone maps
            # on that timestamp skip every older row group, so this does not scan the warehouse.
            self.con.execute(
                """
                CREATE OR REPLACE TEMP TABLE already_stored AS
                SELECT DISTINCT e.event_hash
                FROM main.events e SEMI JOIN valid_chunk v ON e.event_hash = v.event_hash
                WHERE e.ingested_at = $now AND e.source_file = $source_file
                """,
                self._this_run,
            )
        else:
            self.con.execute("CREATE OR REPLACE TEMP TABLE already_stored (event_hash VARCHAR)")
        return True

    def _settle(self) -> None:
        """Move stored lines that repeat an earlier line of the file, or another file's stored
        event, to `rejected_events`; then publish the keys of this file's stored events."""
        self.con.execute("CREATE OR REPLACE TEMP TABLE late_lines (line_number BIGINT)")
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE late_rows "
            "(line_number BIGINT, line_digest UBIGINT, event_hash VARCHAR)"
        )
        repeated = 0
        if self._unprobed:
            self.con.execute(_REPEATED_KEYS)
            [(repeated,)] = self.con.execute("SELECT count(*) FROM repeated_keys").fetchall()
        if repeated:
            self.con.execute(_REPEATED_LINES)
            self.con.execute(_REPEATED_EVENTS, self._this_run)
            self.con.execute(_FIRST_LINES)
            self.con.execute(_REPEATED_LATE)
        others = files_sharing_keys(self.con, self.params["source_file"], "file_keys")
        if others:
            self.con.execute(
                _ELSEWHERE.format(stored_in_others=self.stored_in_others),
                self._this_run | {"others": others},
            )
            self.con.execute(_ELSEWHERE_LATE)
        published = "SELECT hash_key FROM file_keys"
        [(late, first, last)] = self.con.execute(_LATE_EXTENT).fetchall()
        if late:
            if self.log:
                self.log(
                    f"{self.params['source_file']}: {late:,} stored lines repeat an earlier "
                    f"line of the file or an event of {len(others):,} other file(s); moving "
                    "them to rejected_events"
                )
            self._move_late_duplicates(late, first, last)
            published += " ANTI JOIN late_lines USING (line_number)"
        self.con.execute(
            EVENT_HASH_KEYS.insert_sql(f"SELECT $source_file, hash_key FROM ({published})"),
            {"source_file": self.params["source_file"]},
        )
        self._record_version()
        for table in _SETTLE_TABLES:
            self.con.execute(f"DROP TABLE IF EXISTS {table}")

    def file_read(self, file_sha256: str, lines: int) -> None:
        """Tell the writer what the whole file was, once its last chunk is written."""
        self._file = (file_sha256, lines)

    def _record_version(self) -> None:
        """The partition's row in `ingestions`: which run stored which version of the file.

        Publication serves a partition only when a passing reconciliation names this exact
        run and file digest, so a version stored but never reconciled is never served.
        """
        if self._file is None:
            raise RuntimeError("the writer was not told which file it stored (file_read)")
        sha256, lines = self._file
        self.con.execute(
            INGESTIONS.insert_row_sql(),
            {
                "source_file": self.params["source_file"],
                "run_id": self.params["run_id"],
                "file_sha256": sha256,
                "lines_total": lines,
                "stored": self.counts.stored,
                "rejected": self.counts.rejected,
                "duplicates": self.counts.duplicates,
                "ingested_at": self.params["now"],
            },
        )

    def _move_late_duplicates(self, late: int, first: int, last: int) -> None:
        """Move the `late` lines (numbered `first` to `last`) from `events` to
        `rejected_events` as duplicates, with their text read from the file again.

        One range of line numbers at a time: the range's numbers are fetched and its rows
        deleted only when the re-read reaches it, so memory holds one range, whatever the
        file's size.
        """
        removed = 0

        def ranges() -> Iterator[pl.Series]:
            nonlocal removed
            for low in range(first, last + 1, DELETE_BATCH_LINES):
                batch = {"low": low, "high": low + DELETE_BATCH_LINES - 1}
                numbers = self.con.sql(_LATE_IN_RANGE, params=batch).pl().to_series()
                self.con.execute(_KEEP_LATE, self._this_run | batch)
                [(deleted,)] = self.con.execute(_DELETE_LATE, self._this_run | batch).fetchall()
                if deleted != len(numbers):
                    # Never commit a half-moved line: the transaction rolls back.
                    raise RuntimeError(
                        f"{len(numbers)} lines from {low} duplicate other files, "
                        f"but {deleted} stored rows were removed"
                    )
                removed += deleted
                yield numbers

        kept = 0
        for texts in self.reread(ranges()):
            late_texts = arrow_view(texts)  # noqa: F841 - read by the SQL below
            kept += len(texts)
            self.con.execute(
                _INSERT_DUPLICATES.format(rows="late_texts JOIN late_rows USING (line_number)"),
                {**self.params, "reason": DUPLICATE_REASON},
            )
        if not removed == kept == late:
            raise RuntimeError(
                f"{late} lines duplicate other files, but {removed} stored rows were removed "
                f"and {kept} lines re-read"
            )
        self.counts.stored -= late
        self.counts.duplicates += late
