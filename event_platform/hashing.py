"""`event_hash`: the sha256 (hex) of an event's canonical rendering.

The rendering is the contract's `canonical_sql` over the *stored* column types, so the writer
(hashing staged rows) and reconciliation (hashing rows read back from the table, and rows
re-parsed from the file) use one definition, computed by DuckDB's built-in `sha256`, which is
stable across versions, unlike polars' `Expr.hash`.
"""

from __future__ import annotations

from event_platform.contract import StreamContract


def event_hash_sql(contract: StreamContract) -> str:
    """SQL expression for the event hash over columns named as in the contract."""
    return f"sha256({contract.canonical_sql})"
