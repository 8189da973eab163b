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
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from event_platform.contract import EVENTS_CONTRACT, StreamContract
from event_platform.ingest.file_validation import DEFAULT_WORKERS
from event_platform.ingest.lines import DEFAULT_CHUNK_BYTES, FileDigest
from event_platform.reconcile.duplicates import CLAIM_PARAMETERS, unproven_duplicates
from event_platform.reconcile.full import full_pass
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
from event_platform.store.spans import rowid_span
from event_platform.store.tables import DUPLICATE_REASON

LEDGER, FULL = RECONCILE_MODES
MODES = RECONCILE_MODES
DEFAULT_MODE = DEFAULT_RECONCILE_MODE


# In ledger mode the claims are the duplicates' stored hashes: nothing is re-derived. Whether
# each was right to be a duplicate with that hash is the sample's question.
_LEDGER_CLAIMS = """
INSERT INTO reconcile_claims
SELECT line_number, event_hash FROM main.rejected_events
WHERE source_file = $source_file AND rowid BETWEEN $rejected_from AND $rejected_to
  AND reasons = [$duplicate] AND line_number BETWEEN 1 AND $lines
"""

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
            full_pass(
                path, con, partition, digest, found, samples,
                memory_limit=memory_limit, workers=workers, **reading,
            )  # fmt: skip
        else:
            seed, sampled, details = _ledger_pass(
                path, con, partition, digest, found, samples,
                sample_lines=sample_lines, sample_seed=sample_seed, **reading,
            )  # fmt: skip
        # A duplicate whose event the store does not hold has lost that event: it is missing.
        unproven, unproven_sample = unproven_duplicates(con, partition)
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
        {name: partition[name] for name in CLAIM_PARAMETERS} | {"lines": digest.lines},
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
