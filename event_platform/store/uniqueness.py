"""Whether any event hash of one partition is stored twice, anywhere in the warehouse.

Within the partition its events are compared with each other. Other files are searched through
`event_hash_keys`, the writer's 64-bit key index: comparing with every stored hash reads
64 bytes per stored event, where the index is 8 (`store/other_files.py`). The index is trusted
only where it is checked: this partition's
entries must equal the keys of its events. A row added to another file behind the writer's back
has no index entry, so it is found from that file's side: by this search run for that file, and
by that file's reconciliation, which counts the row as unexpected.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from event_platform.store.other_files import STORED_IN_OTHERS, files_sharing_keys
from event_platform.store.schema import hash_key_sql

# This partition's events, with the 64-bit key the writer indexes them by, and its entries in
# that index: each read once, since finding a partition's rows scans the table's names.
_MINE = f"""
CREATE OR REPLACE TEMP TABLE partition_hashes AS
SELECT event_hash, {hash_key_sql("event_hash")} AS hash_key
FROM main.events WHERE source_file = $f
"""
_MINE_INDEXED = """
CREATE OR REPLACE TEMP TABLE partition_keys AS
SELECT hash_key FROM main.event_hash_keys WHERE source_file = $f
"""

# Keys of this partition's events against its entries in the writer's key index, both ways.
_INDEX_MISMATCHES = """
SELECT count(*) FROM (
    (SELECT hash_key FROM partition_hashes EXCEPT ALL SELECT hash_key FROM partition_keys)
    UNION ALL
    (SELECT hash_key FROM partition_keys EXCEPT ALL SELECT hash_key FROM partition_hashes)
)
"""

# Hashes of this partition that occur more than once, here or in the files named; decided on
# the full hash.
_REPEATED = """
WITH occurrences AS (
    SELECT event_hash FROM partition_hashes
    {elsewhere}
),
repeated AS (SELECT event_hash FROM occurrences GROUP BY event_hash HAVING count(*) > 1)
SELECT count(*), list(event_hash ORDER BY event_hash)[1:$n] FROM repeated
"""
_ELSEWHERE = f"""
    UNION ALL
    SELECT event_hash FROM ({STORED_IN_OTHERS})
    WHERE event_hash IN (SELECT event_hash FROM partition_hashes)
"""


@dataclass(frozen=True)
class RepeatedHashes:
    repeated: int  # hashes of the partition stored more than once
    sample: list[str]
    index_mismatches: int  # keys in the partition's events or its index entries, not both
    other_files: int  # files whose indexed keys matched, searched on the full hash


def repeated_hashes(
    con: duckdb.DuckDBPyConnection, source_file: str, *, sample: int = 10
) -> RepeatedHashes:
    """Search for the partition's hashes stored twice; reads only.

    All reads run in one transaction, one snapshot of the store: a writer committing meanwhile
    cannot make the events and their index entries disagree. Its temp tables end with it.
    """
    source = {"f": source_file}
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(_MINE, source)
        con.execute(_MINE_INDEXED, source)
        [(index_mismatches,)] = con.execute(_INDEX_MISMATCHES).fetchall()
        others = files_sharing_keys(con, source_file, "partition_hashes")
        # Without other files to search, the events table is not read again at all.
        query = _REPEATED.format(elsewhere=_ELSEWHERE if others else "")
        params: dict[str, object] = {"n": sample}
        if others:
            params["others"] = others
        [(repeated, examples)] = con.execute(query, params).fetchall()
    finally:
        # Nothing was written but the temp tables, which the rollback drops.
        con.execute("ROLLBACK")
    return RepeatedHashes(repeated, list(examples or []), index_mismatches, len(others))
