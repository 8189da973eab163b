"""Full mode: every line of the file re-derived with the production parser and classified
against the store, chunk by chunk (see `reconcile.partition` for what each mode proves)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import duckdb

from event_platform.contract import StreamContract
from event_platform.ingest.file_validation import validate_file
from event_platform.ingest.hashing import event_hash_sql
from event_platform.ingest.lines import FileDigest
from event_platform.reconcile.duplicates import CLAIM_PARAMETERS
from event_platform.reconcile.report import SAMPLE_SIZE
from event_platform.store.arrow import arrow_view

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
# end (`reconcile.duplicates`).
_CLAIMS = """
INSERT INTO reconcile_claims
SELECT f.line_number, f.event_hash
FROM file_valid f JOIN main.rejected_events r ON r.line_number = f.line_number
WHERE r.source_file = $source_file AND r.rowid BETWEEN $rejected_from AND $rejected_to
  AND r.line_number BETWEEN $low AND $high AND r.reasons = [$duplicate]
"""


def full_pass(
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
            con.execute(_CLAIMS, {name: partition[name] for name in CLAIM_PARAMETERS} | span)
            if progress:
                progress(span["high"], digest.bytes_read)
