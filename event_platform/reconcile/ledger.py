"""The ledger check: the file's lines against the stored rows by line number and digest, unparsed.

Ingestion stores every line's `line_digest` (`ingest/hashing.py`) on the row that holds it: an
event, a rejection or a duplicate. Here the file is read again, split into lines and digested,
and each chunk of lines is matched one to one with the stored rows of its line range. A line is
- `missing`: no stored row has its number;
- `doubled`: more than one row has it (each extra row counts);
- `altered`: its row's digest is not the line's;
- `mismatched`: the row is inconsistent with itself or the file without any parsing: an event
  whose `event_hash`, recomputed in SQL from its stored typed values (`canonical_sql`), is not the
  stored one, or a rejected row whose stored bytes are not the line's.
Rows whose numbers no line has are found by the caller, for both modes.

No line is parsed: that the verdicts, reasons and values are right is what the independent sample
(`sample.py`) checks, on a seeded draw of lines and on every line flagged here.

A sound store passes on a tally: the count of rows and the sum of a hash of each (line number,
digest) pair, on both sides, and the count of inconsistent rows. The file's side and the
rejected rows (whose consistency needs the line's bytes) are tallied chunk by chunk as the file
is read; the events, most of the rows, in one scan of the partition afterwards, which reads
each row group once and plans one query instead of one per chunk. Only when the totals differ
is the file read again, tallied chunk by chunk on both sides, and each chunk whose tally differs
classified line by line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from event_platform.contract import StreamContract
from event_platform.ingest.hashing import event_hash_sql, line_digests
from event_platform.ingest.lines import FileDigest, LineChunk, file_changed, read_line_chunks
from event_platform.reconcile.report import SAMPLE_SIZE

LEDGER_CLASSES = ("missing", "doubled", "altered", "mismatched")

# The check reads the file in blocks of this many of ingestion's chunks. Each block's query scans
# the partition's rejected rows of its range, which share row groups with the blocks around it,
# so fewer, larger blocks read them fewer times; a block holds only its lines and their digests,
# well under what one ingestion chunk costs in validation.
BLOCK_CHUNKS = 2

# Lines flagged here, with their verdict: the sample re-derives them, and counts none twice.
FLAGGED_TABLE = "ledger_flagged"

# The stored rows of the chunk's line range. An event must hash, from its typed values, to its
# stored hash; a rejected row (a duplicate too) must hold the line's exact bytes, its only copy.
# `{join}` is LEFT in the classification. The tally may join inner: `file_lines` holds every
# number of the range, so each of its rejected rows has its line, and DuckDB then builds the join
# on the few rejected rows rather than on the chunk's lines; a row lost there changes the tally.
_EVENT_PLACES = """
SELECT line_number, line_digest, {hash} IS NOT DISTINCT FROM event_hash AS consistent
FROM main.events
WHERE source_file = $source_file AND rowid BETWEEN $events_from AND $events_to
  AND line_number BETWEEN $low AND $high
"""
_REJECTED_PLACES = """
SELECT r.line_number, r.line_digest, r.raw_line IS NOT DISTINCT FROM f.raw AS consistent
FROM main.rejected_events r {join} JOIN file_lines f ON f.line_number = r.line_number
WHERE r.source_file = $source_file AND r.rowid BETWEEN $rejected_from AND $rejected_to
  AND r.line_number BETWEEN $low AND $high
"""
_PLACES = f"{_EVENT_PLACES} UNION ALL {_REJECTED_PLACES}"
# DuckDB's `hash` is not stable across versions, which does not matter here: both sides are
# hashed by the same process, now, and nothing of it is stored.
_PAIR_HASH = "coalesce(sum(hash(line_number, line_digest)::HUGEINT), 0)"
_STORED_TALLY = f"count(*), {_PAIR_HASH}, count(*) FILTER (WHERE NOT consistent)"
_FILE_TALLY = f"(SELECT count(*) FROM file_lines), (SELECT {_PAIR_HASH} FROM file_lines)"
# The first pass: per chunk, the file's lines and the partition's rejected rows of their range;
# then once, after the file, the events of its whole line range.
_READ_TALLY = (
    f"SELECT {_FILE_TALLY}, {_STORED_TALLY} FROM ({_REJECTED_PLACES.format(join='INNER')})"
)
_EVENTS_TALLY = f"SELECT {_STORED_TALLY} FROM ({_EVENT_PLACES})"
# The second pass, chunk by chunk on both sides.
_TALLY = (
    f"SELECT {_FILE_TALLY}, {_STORED_TALLY} FROM ({_PLACES.format(join='INNER', hash='{hash}')})"
)
_CLASSIFY = f"""
INSERT INTO {FLAGGED_TABLE}
WITH places AS ({_PLACES.format(join="LEFT", hash="{hash}")}),
stored AS (
    SELECT p.line_number, count(*) AS copies,
           bool_and(p.line_digest IS NOT DISTINCT FROM f.line_digest) AS same_digest,
           bool_and(p.consistent) AS consistent
    FROM places p JOIN file_lines f USING (line_number)
    GROUP BY p.line_number
),
verdicts AS (
    SELECT f.line_number,
        CASE
            WHEN s.line_number IS NULL THEN 'missing'
            WHEN s.copies > 1 THEN 'doubled'
            WHEN NOT s.same_digest THEN 'altered'
            WHEN NOT s.consistent THEN 'mismatched'
        END AS verdict,
        greatest(coalesce(s.copies, 0) - 1, 1) AS rows
    FROM file_lines f LEFT JOIN stored s USING (line_number)
)
SELECT line_number, verdict, rows FROM verdicts WHERE verdict IS NOT NULL
"""
_FOUND = f"""
SELECT verdict, sum(rows)::BIGINT, list(line_number ORDER BY line_number)[1:{SAMPLE_SIZE}]
FROM {FLAGGED_TABLE} WHERE line_number BETWEEN $low AND $high GROUP BY verdict
"""


@dataclass
class LedgerFindings:
    """Rows per ledger class, and the lowest few line numbers of each."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LEDGER_CLASSES, 0))
    samples: dict[str, list[int]] = field(default_factory=dict)
    chunks: int = 0
    chunks_classified: int = 0


def has_digests(con: duckdb.DuckDBPyConnection, partition: dict[str, object]) -> bool:
    """Whether the partition was stored with line digests (it has rows, and some carry one).

    A partition ingested before the ledger has none at all; a digest missing from some rows of a
    partition that has others is a corruption, which the ledger check reports as `altered`.
    """
    [(rows, digests)] = con.execute(
        """
        SELECT count(*), count(line_digest) FROM (
            SELECT line_digest FROM main.events
            WHERE source_file = $source_file AND rowid BETWEEN $events_from AND $events_to
            UNION ALL
            SELECT line_digest FROM main.rejected_events
            WHERE source_file = $source_file AND rowid BETWEEN $rejected_from AND $rejected_to
        )
        """,
        _params(partition, "events_from", "events_to", "rejected_from", "rejected_to"),
    ).fetchall()
    return rows == 0 or digests > 0


def check_ledger(
    path: Path,
    con: duckdb.DuckDBPyConnection,
    partition: dict[str, object],
    digest: FileDigest,
    *,
    contract: StreamContract,
    chunk_bytes: int,
    max_line_bytes: int,
    progress: Callable[[int, int], None] | None = None,
) -> LedgerFindings:
    """Match every line of `path` with its stored row; run inside the reconciling transaction.

    `partition` holds `source_file` and the partition's rowid spans, as `reconcile_partition`
    finds them. Flagged lines are left in the temp table `ledger_flagged` for the sample.
    """
    found = LedgerFindings()
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {FLAGGED_TABLE} "
        "(line_number BIGINT, verdict VARCHAR, rows BIGINT)"
    )
    rejected = _params(partition, "rejected_from", "rejected_to", "source_file")
    # The file's lines and their pair-hash sum, the stored rows and theirs, inconsistent rows.
    totals = [0, 0, 0, 0, 0]
    for chunk, span in _chunks(path, digest, chunk_bytes, max_line_bytes):
        file_lines = _file_lines(chunk)  # noqa: F841 (read by the SQL's replacement scan)
        [tally] = con.execute(_READ_TALLY, rejected | span).fetchall()
        totals = [total + part for total, part in zip(totals, tally, strict=True)]
        found.chunks += 1
        if progress:
            progress(span["high"], digest.bytes_read)
    events = _params(partition, "events_from", "events_to", "source_file")
    [(rows, row_sum, bad)] = con.execute(
        _EVENTS_TALLY.format(hash=event_hash_sql(contract)),
        events | {"low": 1, "high": digest.lines},
    ).fetchall()
    lines, line_sum, stored, stored_sum, inconsistent = totals
    if (lines, line_sum) != (stored + rows, stored_sum + row_sum) or inconsistent + bad:
        _classify(path, con, partition, digest, found, contract, chunk_bytes, max_line_bytes)
    return found


def _classify(
    path: Path,
    con: duckdb.DuckDBPyConnection,
    partition: dict[str, object],
    first_read: FileDigest,
    found: LedgerFindings,
    contract: StreamContract,
    chunk_bytes: int,
    max_line_bytes: int,
) -> None:
    """The second pass, when the totals differ: tally each chunk on both sides, and classify
    the lines of each chunk whose tally differs."""
    params = _params(
        partition, "events_from", "events_to", "rejected_from", "rejected_to", "source_file"
    )
    tally = _TALLY.format(hash=event_hash_sql(contract))
    classify = _CLASSIFY.format(hash=event_hash_sql(contract))
    digest = FileDigest()
    for chunk, span in _chunks(path, digest, chunk_bytes, max_line_bytes):
        file_lines = _file_lines(chunk)  # noqa: F841 (read by the SQL's replacement scan)
        [(lines, line_sum, rows, row_sum, inconsistent)] = con.execute(
            tally, params | span
        ).fetchall()
        if (lines, line_sum) != (rows, row_sum) or inconsistent:
            found.chunks_classified += 1
            con.execute(classify, params | span)
            for verdict, count, lowest in con.execute(_FOUND, span).fetchall():
                found.counts[verdict] += count
                kept = found.samples.get(verdict, [])
                found.samples[verdict] = (kept + list(lowest))[:SAMPLE_SIZE]
    if digest.sha256 != first_read.sha256:
        raise file_changed(path, first_read.sha256, digest.sha256, "reconciled")


def _chunks(
    path: Path, digest: FileDigest, chunk_bytes: int, max_line_bytes: int
) -> Iterator[tuple[LineChunk, dict[str, int]]]:
    for chunk in read_line_chunks(path, digest, BLOCK_CHUNKS * chunk_bytes, max_line_bytes):
        span = {"low": chunk.first_line_number, "high": chunk.first_line_number + len(chunk) - 1}
        yield chunk, span


def _file_lines(chunk: LineChunk) -> pa.Table:
    """The chunk's lines as the SQL reads them, as `file_lines`."""
    return pa.table(
        {
            "line_number": chunk.line_numbers(),
            "line_digest": line_digests(pl.from_arrow(chunk.raw)).to_arrow(),
            "raw": chunk.raw,
        }
    )


def _params(partition: dict[str, object], *names: str) -> dict[str, object]:
    """The named entries: DuckDB refuses a named parameter that the statement does not use."""
    return {name: partition[name] for name in (*names, "source_file")}
