"""Reconciliation: prove that the store holds exactly what the file says, line by line.

Two modes, chosen per run (`mode`, the `EVENT_PLATFORM_RECONCILE_MODE` setting, the CLI's
`--reconcile`, the reconciliation asset's config):
- `ledger` (default): the file's lines are matched with the stored rows by line number and the
  digest of their raw bytes, without parsing (`ledger.py`); each event's hash is recomputed in
  SQL from its stored values; and a seeded sample of lines, with every line the ledger flagged,
  is re-derived by a second, independent implementation of the contract (`sample.py`). It proves
  the store holds the file's lines; the sample tests, independently, that the parser was right.
- `full`: every line is re-derived with the production parser, below. It proves the store holds
  what that parser produces, line by line, but not that the parser is right.
A partition stored before line digests existed is reconciled in full mode, and the report says so.

In full mode, reconciliation re-reads the source file (not the validation output), re-derives
which lines are valid and the hash of each valid record's canonical values, then reads the
partition back from DuckDB and hashes the values *as stored*. Every line must sit in exactly one
place:
- a valid line: in `events` with the same hash (stored and recomputed), or in `rejected_events`
  as a `duplicate_event` of an event the store holds: an earlier line's of this file, or
  another file's. Without that event, the line's values are stored nowhere: it is missing;
- an invalid line: in `rejected_events` with its text and contract reasons.
Anything else is a missing, unexpected (including a second row for one line) or mismatched row.
Both modes keep the duplicate proof (in ledger mode, from the duplicate's stored hash) and the
balance `lines_total = valid + rejected + duplicates`, and work chunk by chunk, so memory stays
bounded on big files.

Finding a partition's rows is the part that grows with the warehouse: `source_file = $f` alone
reads the whole table, once per chunk. So one scan per table first finds the partition's
`rowid` span (`store/spans.py`) and every chunk's query is confined to it. All reads run in one
transaction: one snapshot of the store, in which the span holds every row of the partition.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from event_platform.contract import EVENTS_CONTRACT, StreamContract
from event_platform.ingest.file_validation import DEFAULT_WORKERS, validate_file
from event_platform.ingest.hashing import event_hash_sql
from event_platform.ingest.lines import DEFAULT_CHUNK_BYTES, FileDigest
from event_platform.reconcile.ledger import FLAGGED_TABLE, check_ledger, has_digests
from event_platform.reconcile.report import SAMPLE_SIZE, ReconciliationReport
from event_platform.reconcile.sample import DEFAULT_SAMPLE_LINES, check_sample, new_seed
from event_platform.settings import (
    DEFAULT_DUCKDB_MEMORY_LIMIT,
    DEFAULT_EVENT_TYPES,
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_RECONCILE_MODE,
    RECONCILE_MODES,
)
from event_platform.store.arrow import arrow_view
from event_platform.store.other_files import STORED_IN_OTHERS, files_sharing_keys
from event_platform.store.spans import rowid_span
from event_platform.store.tables import DUPLICATE_REASON, hash_key_sql

LEDGER, FULL = RECONCILE_MODES
MODES = RECONCILE_MODES
DEFAULT_MODE = DEFAULT_RECONCILE_MODE


# One pass over the chunk's line range: where the file says each line belongs (an event with a
# hash, or a rejection), where the store has it (events, duplicates, rejections; maybe twice),
# and one verdict per line. Extra copies of a line count once each as unexpected.
# A rejected line's stored text and reasons are compared with the file's: that row is the only
# copy of the line the store keeps, so a truncated text or a dropped reason is a mismatch.
# The hash of the stored values is compared with the stored hash where the row is read, and
# only the outcome travels on, not the 64-character recomputed hash through the GROUP BY.
_CLASSIFY = """
WITH
expected AS (
    SELECT line_number, event_hash AS h, true AS is_valid FROM file_valid
    UNION ALL
    SELECT line_number, NULL, false FROM file_rejected
),
places AS (
    SELECT line_number, 'event' AS place, event_hash,
           {hash} IS NOT DISTINCT FROM event_hash AS consistent
    FROM main.events
    WHERE source_file = $source_file AND rowid BETWEEN $events_from AND $events_to
      AND line_number BETWEEN $low AND $high
    UNION ALL
    SELECT r.line_number,
           CASE WHEN r.reasons = [$duplicate] THEN 'duplicate' ELSE 'rejected' END,
           NULL, f.line_number IS NULL OR (r.raw_line IS NOT DISTINCT FROM f.raw_line
                                           AND list_sort(r.reasons) = list_sort(f.reasons))
    FROM main.rejected_events r LEFT JOIN file_rejected f ON f.line_number = r.line_number
    WHERE r.source_file = $source_file AND r.rowid BETWEEN $rejected_from AND $rejected_to
      AND r.line_number BETWEEN $low AND $high
),
stored AS (
    SELECT line_number, count(*) AS copies, any_value(place) AS place,
           any_value(event_hash) AS event_hash, bool_and(consistent) AS consistent
    FROM places GROUP BY line_number
),
verdicts AS (
    SELECT coalesce(e.line_number, s.line_number) AS line_number,
        CASE
            WHEN s.line_number IS NULL THEN 'missing'
            WHEN e.line_number IS NULL OR s.copies > 1 THEN 'unexpected'
            WHEN e.is_valid AND s.place = 'duplicate' THEN NULL
            WHEN e.is_valid AND s.place = 'event' THEN
                CASE WHEN s.event_hash IS DISTINCT FROM e.h OR NOT s.consistent
                     THEN 'mismatched' END
            WHEN NOT e.is_valid AND s.place = 'rejected' THEN
                CASE WHEN NOT s.consistent THEN 'mismatched' END
            ELSE 'unexpected'
        END AS verdict,
        CASE WHEN e.line_number IS NULL THEN s.copies ELSE greatest(s.copies - 1, 1) END AS rows
    FROM expected e FULL OUTER JOIN stored s USING (line_number)
)
SELECT verdict, sum(rows)::BIGINT AS n, list(line_number ORDER BY line_number)[1:{sample}]
FROM verdicts WHERE verdict IS NOT NULL GROUP BY verdict
"""

# A valid line stored as a duplicate claims that the store holds its event elsewhere. The claims
# are gathered chunk by chunk, with the hash re-derived from the file, and proven once at the
# end (`_unproven_duplicates`).
_CLAIMS = """
INSERT INTO reconcile_claims
SELECT f.line_number, f.event_hash
FROM file_valid f JOIN main.rejected_events r ON r.line_number = f.line_number
WHERE r.source_file = $source_file AND r.rowid BETWEEN $rejected_from AND $rejected_to
  AND r.line_number BETWEEN $low AND $high AND r.reasons = [$duplicate]
"""

# In ledger mode the claims are the duplicates' stored hashes: nothing is re-derived. Whether
# each was right to be a duplicate with that hash is the sample's question.
_LEDGER_CLAIMS = """
INSERT INTO reconcile_claims
SELECT line_number, event_hash FROM main.rejected_events
WHERE source_file = $source_file AND rowid BETWEEN $rejected_from AND $rejected_to
  AND reasons = [$duplicate] AND line_number BETWEEN 1 AND $lines
"""

# The claims that no earlier line of this file proves: that line's stored event would have the
# hash. The rest must be proven by another file (`store/other_files.py`). One join per
# statement, as in the writer: DuckDB spills a lone join, so a whole file of duplicates (a
# claim per line) stays within the memory cap.
_UNPROVEN_HERE = """
CREATE OR REPLACE TEMP TABLE reconcile_unproven AS
SELECT c.line_number, c.event_hash FROM reconcile_claims c
WHERE NOT EXISTS (
    SELECT 1 FROM main.events e
    WHERE e.source_file = $source_file AND e.rowid BETWEEN $events_from AND $events_to
      AND e.event_hash = c.event_hash AND e.line_number < c.line_number
)
"""
_UNPROVEN_KEYS = f"(SELECT {hash_key_sql('event_hash')} AS hash_key FROM reconcile_unproven)"
# Those that another file proves, as a table of their own: a semi join, the writer's shape,
# spills under the memory cap, where a large DELETE from `reconcile_unproven` does not.
_PROVEN_ELSEWHERE = f"""
CREATE OR REPLACE TEMP TABLE reconcile_proven AS
SELECT line_number FROM reconcile_unproven WHERE event_hash IN ({STORED_IN_OTHERS})
"""
_COUNT = "SELECT count(*) FROM {table}"
# Only a store that fails reads this; sorting every unproven line into one list could itself
# outgrow the cap when a whole file's duplicates are unproven.
_SAMPLE = "SELECT line_number FROM {table} ORDER BY line_number LIMIT {sample}"
_STILL_UNPROVEN = (
    "(SELECT line_number FROM reconcile_unproven ANTI JOIN reconcile_proven USING (line_number))"
)

# Every row of the partition, with the place it sits in.
_PARTITION_ROWS = """
SELECT line_number, 'event' AS place FROM main.events
WHERE source_file = $source_file AND rowid BETWEEN $events_from AND $events_to
UNION ALL
SELECT line_number, CASE WHEN reasons = [$duplicate] THEN 'duplicate' ELSE 'rejected' END
FROM main.rejected_events
WHERE source_file = $source_file AND rowid BETWEEN $rejected_from AND $rejected_to
"""
_OUTSIDE = "(line_number < 1 OR line_number > $lines)"
# Rows whose line number no line of the file has, and how many rows sit in each place.
_OUT_OF_RANGE = f"""
SELECT count(*) FILTER (WHERE {_OUTSIDE}),
       count(*) FILTER (WHERE place = 'event'),
       count(*) FILTER (WHERE place = 'rejected'),
       count(*) FILTER (WHERE place = 'duplicate')
FROM ({_PARTITION_ROWS})
"""
# Read only when some exist, with a LIMIT, as `_SAMPLE`: a store whose line numbers are all
# shifted has a whole file of them.
_OUT_OF_RANGE_SAMPLE = f"""
SELECT line_number FROM ({_PARTITION_ROWS}) WHERE {_OUTSIDE}
ORDER BY line_number LIMIT {{sample}}
"""


def reconcile_partition(
    path: Path,
    con: duckdb.DuckDBPyConnection,
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
    mode: str = DEFAULT_MODE,
    sample_lines: int = DEFAULT_SAMPLE_LINES,
    sample_seed: int | None = None,
) -> ReconciliationReport:
    """Compare the file with its stored partition; reads only, the caller records the report.

    `mode` is `ledger` or `full` (see the module's docstring); in ledger mode `sample_lines`
    lines are drawn with `sample_seed` (a fresh seed when None) for the independent sample.
    `progress(lines_done, bytes_done)` is called after each chunk, as in ingestion: a large
    file takes a while, and a user should see it move.
    """
    if mode not in MODES:
        raise ValueError(f"reconciliation mode {mode!r} is not one of {', '.join(MODES)}")
    source_file = source_file or path.name
    found = {"missing": 0, "unexpected": 0, "mismatched": 0}
    samples: dict[str, list[int]] = {verdict: [] for verdict in found}
    details: dict[str, int] = {}
    note = None
    seed = sampled = None
    digest = FileDigest()
    con.execute("BEGIN TRANSACTION")
    try:
        stored_version, partition = _locate(con, source_file)
        con.execute(
            "CREATE OR REPLACE TEMP TABLE reconcile_claims (line_number BIGINT, event_hash VARCHAR)"
        )
        if mode == LEDGER and not has_digests(con, partition):
            mode = FULL
            note = "stored without line digests (ingested before the ledger): reconciled in full"
        reading = {
            "contract": contract,
            "allowed_event_types": allowed_event_types,
            "chunk_bytes": chunk_bytes,
            "max_line_bytes": max_line_bytes,
            "progress": progress,
        }
        if mode == FULL:
            _full_pass(
                path, con, partition, digest, found, samples,
                memory_limit=memory_limit, workers=workers, **reading,
            )  # fmt: skip
        else:
            seed, sampled, details = _ledger_pass(
                path, con, partition, digest, found, samples,
                sample_lines=sample_lines, sample_seed=sample_seed, **reading,
            )  # fmt: skip
        # A duplicate whose event the store does not hold has lost that event: it is missing.
        unproven, unproven_sample = _unproven_duplicates(con, partition)
        found["missing"] += unproven
        samples["missing"] = sorted(samples["missing"] + unproven_sample)[:SAMPLE_SIZE]
        outside, outside_lines, (stored, rejected, duplicates) = _places(
            con, partition, digest.lines
        )
    finally:
        # Nothing was written but the temp tables, which the rollback drops.
        con.execute("ROLLBACK")
    found["unexpected"] += outside
    if details:
        details["unexpected"] = outside
    samples["unexpected"] = sorted(samples["unexpected"] + outside_lines)[:SAMPLE_SIZE]
    balanced = digest.lines == stored + rejected + duplicates
    ingest_run_id, stored_sha256 = stored_version[0] if stored_version else (None, None)
    # The report vouches for one stored version: the file read now must be the one stored.
    same_version = stored_sha256 == digest.sha256
    return ReconciliationReport(
        source_file=source_file,
        file_sha256=digest.sha256,
        lines_total=digest.lines,
        valid=stored,
        rejected=rejected,
        duplicates=duplicates,
        stored_rows=stored,
        missing_rows=found["missing"],
        unexpected_rows=found["unexpected"],
        mismatched_rows=found["mismatched"],
        passed=balanced and same_version and not any(found.values()),
        checked_at=datetime.now(UTC).replace(tzinfo=None),
        run_id=run_id,
        ingest_run_id=ingest_run_id,
        mode=mode,
        sample_seed=seed,
        sample_lines=sampled,
        samples={verdict: lines for verdict, lines in samples.items() if lines},
        details=details,
        note=note,
    )


def _locate(
    con: duckdb.DuckDBPyConnection, source_file: str
) -> tuple[list[tuple[str, str]], dict[str, object]]:
    """The stored version of the file (its ingestion run and sha256) and the query parameters
    that confine every statement to the partition's rowid spans."""
    stored_version = con.execute(
        "SELECT run_id, file_sha256 FROM main.ingestions WHERE source_file = $f",
        {"f": source_file},
    ).fetchall()
    # No rows: an empty span, BETWEEN NULL AND NULL, selects nothing, as it should.
    events_span = rowid_span(con, "events", source_file) or (None, None)
    rejected_span = rowid_span(con, "rejected_events", source_file) or (None, None)
    partition = {
        "source_file": source_file,
        "duplicate": DUPLICATE_REASON,
        "events_from": events_span[0],
        "events_to": events_span[1],
        "rejected_from": rejected_span[0],
        "rejected_to": rejected_span[1],
    }
    return stored_version, partition


def _places(
    con: duckdb.DuckDBPyConnection, partition: dict[str, object], lines: int
) -> tuple[int, list[int], tuple[int, int, int]]:
    """Rows whose line number the file lacks (count and a sample), and the rows stored as
    events, rejected lines and duplicates."""
    whole_file = {**partition, "lines": lines}
    # fetchall, not fetchone: see `event_platform.store`.
    [(outside, stored, rejected, duplicates)] = con.execute(_OUT_OF_RANGE, whole_file).fetchall()
    outside_sample = (
        con.execute(_OUT_OF_RANGE_SAMPLE.format(sample=SAMPLE_SIZE), whole_file).fetchall()
        if outside
        else []
    )
    return outside, [line for (line,) in outside_sample], (stored, rejected, duplicates)


def _ledger_pass(
    path: Path,
    con: duckdb.DuckDBPyConnection,
    partition: dict[str, object],
    digest: FileDigest,
    found: dict[str, int],
    samples: dict[str, list[int]],
    *,
    contract: StreamContract,
    allowed_event_types: frozenset[int],
    chunk_bytes: int,
    max_line_bytes: int,
    sample_lines: int,
    sample_seed: int | None,
    progress: Callable[[int, int], None] | None,
) -> tuple[int, int, dict[str, int]]:
    """Ledger mode: match the file's lines to the stored rows by digest, then re-derive a
    seeded sample independently, adding to `found` and `samples`; gathers the duplicates'
    claims. Returns the seed, the lines sampled and the count per ledger class. Runs inside
    the reconciling transaction."""
    ledger = check_ledger(
        path,
        con,
        partition,
        digest,
        contract=contract,
        chunk_bytes=chunk_bytes,
        max_line_bytes=max_line_bytes,
        progress=progress,
    )
    con.execute(
        _LEDGER_CLAIMS,
        {name: partition[name] for name in _CLAIM_PARAMETERS} | {"lines": digest.lines},
    )
    seed = new_seed() if sample_seed is None else sample_seed
    sample = check_sample(
        path,
        con,
        partition,
        lines_total=digest.lines,
        size=sample_lines,
        seed=seed,
        flagged_table=FLAGGED_TABLE,
        contract=contract,
        allowed_event_types=allowed_event_types,
        max_line_bytes=max_line_bytes,
    )
    details = {**ledger.counts, "sample_mismatched": sample.mismatched}
    # As the report names rows in both modes: a second row for a line is unexpected,
    # a row that is not the line's is mismatched.
    for verdict, classes in _LEDGER_VERDICTS.items():
        for name in classes:
            found[verdict] += ledger.counts[name]
            samples[verdict] += ledger.samples.get(name, [])
    found["mismatched"] += sample.mismatched
    samples["mismatched"] += sample.samples
    for verdict, lines in samples.items():
        samples[verdict] = sorted(set(lines))[:SAMPLE_SIZE]
    return seed, sample.lines, details


# The report's verdicts in terms of the ledger's classes.
_LEDGER_VERDICTS = {
    "missing": ("missing",),
    "unexpected": ("doubled",),
    "mismatched": ("altered", "mismatched"),
}


def _full_pass(
    path: Path,
    con: duckdb.DuckDBPyConnection,
    partition: dict[str, object],
    digest: FileDigest,
    found: dict[str, int],
    samples: dict[str, list[int]],
    *,
    contract: StreamContract,
    allowed_event_types: frozenset[int],
    chunk_bytes: int,
    max_line_bytes: int,
    memory_limit: str,
    workers: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Full mode: re-derive every line and classify it against the store, adding to `found`
    and `samples`, and gather the duplicates' claims. Runs inside the reconciling transaction."""
    classify = _CLASSIFY.format(hash=event_hash_sql(contract), sample=SAMPLE_SIZE)
    # The file side is re-derived from the file itself, on the validating workers, while
    # this thread classifies the previous chunk against the store.
    file_side = validate_file(
        path,
        digest,
        contract=contract,
        allowed_event_types=allowed_event_types,
        chunk_bytes=chunk_bytes,
        max_line_bytes=max_line_bytes,
        memory_limit=memory_limit,
        workers=workers,
        valid_columns=("line_number", "event_hash"),
    )
    with closing(file_side):
        for hashed in file_side:
            chunk = hashed.chunk
            # Read by the SQL through DuckDB's replacement scan: a view made with
            # `con.register` would keep its Arrow data alive until the transaction ends.
            valid, rejected_lines = hashed.valid, hashed.rejected
            file_valid = arrow_view(valid)  # noqa: F841
            file_rejected = arrow_view(rejected_lines)  # noqa: F841
            span = {
                "low": chunk.first_line_number,
                "high": chunk.first_line_number + len(chunk) - 1,
            }
            rows = con.execute(classify, partition | span).fetchall()
            for verdict, count, sample in rows:
                found[verdict] += count
                samples[verdict] = (samples[verdict] + list(sample))[:SAMPLE_SIZE]
            con.execute(_CLAIMS, {name: partition[name] for name in _CLAIM_PARAMETERS} | span)
            if progress:
                progress(span["high"], digest.bytes_read)


_CLAIM_PARAMETERS = ("source_file", "duplicate", "rejected_from", "rejected_to")


def _unproven_duplicates(
    con: duckdb.DuckDBPyConnection, partition: dict[str, object]
) -> tuple[int, list[int]]:
    """The lines stored as duplicates whose event neither an earlier line of the file nor
    another file has stored, and a sample of them. Run inside the reconciling transaction."""
    here = {name: partition[name] for name in ("source_file", "events_from", "events_to")}
    con.execute(_UNPROVEN_HERE, here)
    [(unproven,)] = con.execute(_COUNT.format(table="reconcile_unproven")).fetchall()
    if not unproven:
        return 0, []
    still = "reconcile_unproven"
    others = files_sharing_keys(con, str(partition["source_file"]), _UNPROVEN_KEYS)
    if others:
        con.execute(_PROVEN_ELSEWHERE, {"others": others})
        # The proven lines are some of the unproven ones, so the difference of the counts is
        # what is left, and a sound store needs no second join to say so.
        [(proven,)] = con.execute(_COUNT.format(table="reconcile_proven")).fetchall()
        unproven -= proven
        still = _STILL_UNPROVEN
    if not unproven:
        return 0, []
    rows = con.execute(_SAMPLE.format(table=still, sample=SAMPLE_SIZE)).fetchall()
    return unproven, [line for (line,) in rows]
