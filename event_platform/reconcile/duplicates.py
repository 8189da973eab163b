"""The duplicate proof, in both modes: a line stored as a `duplicate_event` claims that the
store holds its event, at an earlier line of the file or in another file; a claim nobody proves
means the event was lost, and the line counts as missing."""

from __future__ import annotations

import duckdb

from event_platform.reconcile.report import SAMPLE_SIZE
from event_platform.store.other_files import STORED_IN_OTHERS, files_sharing_keys
from event_platform.store.tables import hash_key_sql

# The parameters every claim statement takes from the partition.
CLAIM_PARAMETERS = ("source_file", "duplicate", "rejected_from", "rejected_to")

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


def unproven_duplicates(
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
