"""Where one partition's rows sit in a table, as a span of DuckDB `rowid`s.

Every per-partition statement filters on `source_file`, and DuckDB's zone maps keep only the
first 8 bytes of a string: landed files' names share longer prefixes (`events-2026-11-...`),
so `source_file = $f` alone skips no row group and reads the whole column. A partition's rows
are appended by one transaction, so they sit together: one scan finds their span, and a
statement that also filters on `rowid BETWEEN` it skips every other row group. Use the span in
the same transaction as the scan that found it, so it holds every row of the partition.
"""

from __future__ import annotations

import duckdb

_TABLES = frozenset({"events", "rejected_events", "event_hash_keys"})


def rowid_span(
    con: duckdb.DuckDBPyConnection, table: str, source_file: str
) -> tuple[int, int] | None:
    """(first, last) rowid of the partition's rows in `table`, or None when it has none."""
    if table not in _TABLES:
        raise ValueError(f"not a partitioned table: {table}")
    # fetchall, not fetchone: see `event_platform.store`.
    [(first, last)] = con.execute(
        f"SELECT min(rowid), max(rowid) FROM main.{table} WHERE source_file = $f",
        {"f": source_file},
    ).fetchall()
    return None if first is None else (first, last)
