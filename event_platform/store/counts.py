"""How many lines of one partition sit in each place: stored, rejected, duplicate."""

from __future__ import annotations

import duckdb

from event_platform.store.schema import DUPLICATE_REASON


def partition_counts(con: duckdb.DuckDBPyConnection, source_file: str) -> tuple[int, int, int]:
    """(stored events, rejected lines, duplicate lines) of one source file.

    Read with fetchall, not fetchone (see `event_platform.store`).
    """
    [counts] = con.execute(
        """
        SELECT
            (SELECT count(*) FROM main.events WHERE source_file = $source_file),
            (SELECT count(*) FILTER (WHERE NOT reasons = [$duplicate])
               FROM main.rejected_events WHERE source_file = $source_file),
            (SELECT count(*) FILTER (WHERE reasons = [$duplicate])
               FROM main.rejected_events WHERE source_file = $source_file)
        """,
        {"source_file": source_file, "duplicate": DUPLICATE_REASON},
    ).fetchall()
    return counts
