"""Where else in the warehouse a file's events may be stored, and whether they are.

The writer (settling duplicates across files), reconciliation (proving a duplicate's event is
stored) and the uniqueness check all ask this, in two steps:
- **Nominate** other files through `event_hash_keys`, the writer's 64-bit key per stored event:
  8 bytes a stored event to scan, where comparing full hashes reads 64, and that scan grows
  with the warehouse.
- **Decide** on the full hash, in the nominated files only: a key is a probe, and two events
  are the same only when their whole sha256 is.

The writer and reconciliation run each step as a statement of its own, holding one join: DuckDB
spills a lone join's build side when it outgrows the memory cap, where a statement that held
several joins and a DISTINCT over the same rows runs out of memory on a file of nothing but
duplicates. The uniqueness check decides within a GROUP BY, which DuckDB spills as well; it
reads other files
only where their keys match this partition's: in a sound store, only on a 64-bit collision.
"""

from __future__ import annotations

import duckdb

_SHARING_KEYS = """
SELECT DISTINCT source_file FROM main.event_hash_keys
WHERE source_file <> $source_file AND hash_key IN (SELECT hash_key FROM {keys})
"""

# The full hashes stored by the files a query names in its `$others` parameter (a list).
STORED_IN_OTHERS = (
    "SELECT event_hash FROM main.events WHERE source_file IN (SELECT unnest($others))"
)


def files_sharing_keys(con: duckdb.DuckDBPyConnection, source_file: str, keys: str) -> list[str]:
    """Files other than `source_file` whose indexed keys include a `hash_key` of `keys`, a
    table name or parenthesised query; sorted, so that callers and their logs are stable."""
    rows = con.execute(_SHARING_KEYS.format(keys=keys), {"source_file": source_file}).fetchall()
    return sorted(name for (name,) in rows)
