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
from event_platform.store.schema import hash_key_sql


def event_hash_sql(contract: StreamContract) -> str:
    """SQL expression for the event hash over columns named as in the contract."""
    return f"sha256({contract.canonical_sql})"


def with_event_hash(
    con: duckdb.DuckDBPyConnection, valid: pl.DataFrame, contract: StreamContract
) -> pl.DataFrame:
    """Add `event_hash`, its `hash_key`, and `first_in_chunk` (no earlier line has the hash).

    Only the hashed columns cross into DuckDB and only the hash comes back; `valid` is in line
    order, so the first occurrence of a hash is its earliest line (polars `is_first_distinct`,
    which costs a fraction of a SQL window over the hash).
    """
    hash_input = valid.select(f.name for f in contract.scalar_fields).to_arrow()  # noqa: F841
    hashes = con.sql(
        f"SELECT event_hash, {hash_key_sql('event_hash')} AS hash_key "
        f"FROM (SELECT {event_hash_sql(contract)} AS event_hash FROM hash_input)"
    ).to_arrow_table()
    if hashes.num_rows != valid.height:  # a projection keeps every row in order; say so loudly
        raise RuntimeError(f"hashed {hashes.num_rows} of {valid.height} rows")
    hashed = pl.from_arrow(hashes)
    return valid.with_columns(
        *hashed.get_columns(),
        hashed["event_hash"].is_first_distinct().alias("first_in_chunk"),
    )
