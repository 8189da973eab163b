"""The warehouse's tables as the rest of the code names them, all derived from `store.tables`.

`create_tables` is kept as the name callers use for "make this connection's warehouse ready":
it creates a new warehouse or migrates an older one (`store.migrations`).
"""

from __future__ import annotations

import duckdb

from event_platform.store.migrations import migrate
from event_platform.store.tables import (
    DUPLICATE_REASON,
    EVENT_HASH_KEYS,
    EVENTS,
    INGESTIONS,
    RECONCILIATION_REPORTS,
    REJECTED_EVENTS,
    SPECS,
    TableSpec,
    hash_key_sql,
)

__all__ = [
    "DUPLICATE_REASON",
    "EVENTS_COLUMNS",
    "EVENT_HASH_KEYS_COLUMNS",
    "INGESTIONS_COLUMNS",
    "RECONCILIATION_COLUMNS",
    "REJECTED_COLUMNS",
    "SPECS",
    "TABLES",
    "TableSpec",
    "create_tables",
    "hash_key_sql",
    "table_schema",
]

EVENTS_COLUMNS: dict[str, str] = EVENTS.types
REJECTED_COLUMNS: dict[str, str] = REJECTED_EVENTS.types
RECONCILIATION_COLUMNS: dict[str, str] = RECONCILIATION_REPORTS.types
INGESTIONS_COLUMNS: dict[str, str] = INGESTIONS.types
EVENT_HASH_KEYS_COLUMNS: dict[str, str] = EVENT_HASH_KEYS.types

TABLES: dict[str, dict[str, str]] = {name: spec.types for name, spec in SPECS.items()}


def create_tables(con: duckdb.DuckDBPyConnection, where: str = "in use") -> None:
    """Create every table of a new warehouse, or migrate an older one, in one transaction.

    Readers never meet an absent table; a warehouse newer than this release is refused.
    """
    migrate(con, where)


def table_schema(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """The live column -> type mapping of a table, as DuckDB reports it."""
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return {name: data_type for name, data_type in rows}
