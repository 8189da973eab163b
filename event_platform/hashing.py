"""`event_hash`: the sha256 (hex) of an event's canonical rendering.

The rendering is the contract's `canonical_sql` over the *stored* column types, so the writer
(hashing staged rows) and reconciliation (hashing rows read back from the table, and rows
re-parsed from the file) use one definition, computed by DuckDB's built-in `sha256`, which is
stable across versions, unlike polars' `Expr.hash`.
"""

from __future__ import annotations

import duckdb
import polars as pl

from event_platform.contract import StreamContract


def event_hash_sql(contract: StreamContract) -> str:
    """SQL expression for the event hash over columns named as in the contract."""
    return f"sha256({contract.canonical_sql})"


def with_event_hash(
    con: duckdb.DuckDBPyConnection, valid: pl.DataFrame, contract: StreamContract
) -> pl.DataFrame:
    """Add `event_hash` and `first_in_chunk` (no earlier line of the chunk has the same hash).

    Runs on the caller's private connection, so ingestion does it on the validation thread,
    overlapping with the previous chunk's write.
    """
    con.register("valid_rows", valid.to_arrow())
    try:
        return pl.from_arrow(
            con.sql(
                f"""
                SELECT *, line_number = min(line_number) OVER (PARTITION BY event_hash)
                    AS first_in_chunk
                FROM (SELECT *, {event_hash_sql(contract)} AS event_hash FROM valid_rows)
                """
            ).to_arrow_table()
        )
    finally:
        con.unregister("valid_rows")
