"""Reconciliation: prove that the store holds exactly what the file says, line by line.

It re-reads the source file (not the validation output), re-derives which lines are valid and
the hash of each valid record's canonical values, then reads the partition back from DuckDB and
hashes the values *as stored*. Every line must sit in exactly one place:
- a valid line: in `events` with the same hash (stored and recomputed), or in `rejected_events`
  as a `duplicate_event`;
- an invalid line: in `rejected_events` with contract reasons.
Anything else is a missing, unexpected (including a second row for one line) or mismatched row.
It works chunk by chunk, so memory stays bounded on big files.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from event_platform.contract import EVENTS_CONTRACT, StreamContract
from event_platform.hashing import event_hash_sql
from event_platform.lines import DEFAULT_CHUNK_BYTES, FileDigest, read_line_chunks
from event_platform.store.schema import DUPLICATE_REASON
from event_platform.validation import Validator

SAMPLE_SIZE = 10


@dataclass
class ReconciliationReport:
    source_file: str
    file_sha256: str
    lines_total: int
    valid: int
    rejected: int
    duplicates: int
    stored_rows: int
    missing_rows: int
    unexpected_rows: int
    mismatched_rows: int
    passed: bool
    checked_at: datetime
    run_id: str
    samples: dict[str, list[int]] = field(default_factory=dict)

    def row(self) -> dict[str, object]:
        """The columns of `reconciliation_reports`, in order."""
        values = asdict(self)
        values.pop("samples")
        return values


# One SQL over the chunk's line range: classify every file-side and store-side line.
_CLASSIFY = """
WITH
f AS (SELECT line_number, {hash} AS h FROM file_valid),
fr AS (SELECT line_number FROM file_rejected),
s AS (
    SELECT line_number, event_hash, {hash} AS recomputed,
           row_number() OVER (PARTITION BY line_number) AS k
    FROM main.events
    WHERE source_file = $source_file AND line_number BETWEEN $low AND $high
),
r AS (
    SELECT line_number, reasons = [$duplicate] AS is_duplicate,
           row_number() OVER (PARTITION BY line_number) AS k
    FROM main.rejected_events
    WHERE source_file = $source_file AND line_number BETWEEN $low AND $high
),
verdicts AS (
    SELECT line_number, 'missing' AS verdict FROM f
        WHERE line_number NOT IN (SELECT line_number FROM s)
          AND line_number NOT IN (SELECT line_number FROM r WHERE is_duplicate)
    UNION ALL SELECT line_number, 'missing' FROM fr
        WHERE line_number NOT IN (SELECT line_number FROM r WHERE NOT is_duplicate)
    UNION ALL SELECT line_number, 'unexpected' FROM s
        WHERE k > 1 OR line_number NOT IN (SELECT line_number FROM f)
    UNION ALL SELECT line_number, 'unexpected' FROM r
        WHERE k > 1
           OR (is_duplicate AND line_number NOT IN (SELECT line_number FROM f))
           OR (NOT is_duplicate AND line_number NOT IN (SELECT line_number FROM fr))
           OR line_number IN (SELECT line_number FROM s)
    UNION ALL SELECT f.line_number, 'mismatched' FROM f JOIN s USING (line_number)
        WHERE s.k = 1 AND (s.event_hash IS DISTINCT FROM f.h OR s.recomputed IS DISTINCT FROM f.h)
)
SELECT verdict, count(*) AS n, list(line_number ORDER BY line_number)[1:{sample}] AS sample
FROM verdicts GROUP BY verdict
"""

# Rows whose line number no line of the file has.
_OUT_OF_RANGE = """
SELECT count(*), list(line_number ORDER BY line_number)[1:{sample}] FROM (
    SELECT line_number FROM main.events WHERE source_file = $source_file
        AND (line_number < 1 OR line_number > $lines)
    UNION ALL
    SELECT line_number FROM main.rejected_events WHERE source_file = $source_file
        AND (line_number < 1 OR line_number > $lines)
)
"""

_STORED_COUNTS = """
SELECT
    (SELECT count(*) FROM main.events WHERE source_file = $source_file),
    (SELECT count(*) FILTER (WHERE NOT reasons = [$duplicate])
       FROM main.rejected_events WHERE source_file = $source_file),
    (SELECT count(*) FILTER (WHERE reasons = [$duplicate])
       FROM main.rejected_events WHERE source_file = $source_file)
"""


def reconcile_partition(
    path: Path,
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    source_file: str | None = None,
    contract: StreamContract = EVENTS_CONTRACT,
    allowed_event_types: frozenset[int] = frozenset(range(1, 11)),
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> ReconciliationReport:
    """Compare the file with its stored partition; reads only, the caller records the report."""
    source_file = source_file or path.name
    found = {"missing": 0, "unexpected": 0, "mismatched": 0}
    samples: dict[str, list[int]] = {verdict: [] for verdict in found}
    digest = FileDigest()
    validator = Validator(contract, allowed_event_types)
    classify = _CLASSIFY.format(hash=event_hash_sql(contract), sample=SAMPLE_SIZE)
    try:
        for chunk in read_line_chunks(path, digest, chunk_bytes):
            validated = validator.validate(chunk)
            con.register("file_valid", validated.valid.drop("line").to_arrow())
            con.register("file_rejected", validated.rejected.select("line_number").to_arrow())
            try:
                rows = con.execute(
                    classify,
                    {
                        "source_file": source_file,
                        "low": chunk.first_line_number,
                        "high": chunk.first_line_number + len(chunk) - 1,
                        "duplicate": DUPLICATE_REASON,
                    },
                ).fetchall()
            finally:
                con.unregister("file_valid")
                con.unregister("file_rejected")
            for verdict, count, sample in rows:
                found[verdict] += count
                samples[verdict] = (samples[verdict] + list(sample))[:SAMPLE_SIZE]
    finally:
        validator.close()
    outside, outside_sample = con.execute(
        _OUT_OF_RANGE.format(sample=SAMPLE_SIZE),
        {"source_file": source_file, "lines": digest.lines},
    ).fetchone()
    found["unexpected"] += outside
    samples["unexpected"] = (samples["unexpected"] + list(outside_sample or []))[:SAMPLE_SIZE]
    stored, rejected, duplicates = con.execute(
        _STORED_COUNTS, {"source_file": source_file, "duplicate": DUPLICATE_REASON}
    ).fetchone()
    balanced = digest.lines == stored + rejected + duplicates
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
        passed=balanced and not any(found.values()),
        checked_at=datetime.now(UTC).replace(tzinfo=None),
        run_id=run_id,
        samples={verdict: lines for verdict, lines in samples.items() if lines},
    )


def record_report(con: duckdb.DuckDBPyConnection, report: ReconciliationReport) -> None:
    """Append the report; the history of reports per file is kept."""
    row = report.row()
    placeholders = ", ".join(f"${name}" for name in row)
    con.execute(f"INSERT INTO main.reconciliation_reports VALUES ({placeholders})", row)


def reports_frame(reports: list[ReconciliationReport]) -> pl.DataFrame:
    return pl.DataFrame([report.row() for report in reports])
