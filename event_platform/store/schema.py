"""The one place that knows the warehouse's table DDL.

`events` has no PRIMARY KEY on purpose: an ART index made bulk inserts ~3.7x slower and the
file ~2.6x bigger; uniqueness of `event_hash` is enforced by the writer's anti-join and watched
by an asset check instead.
"""

from __future__ import annotations

import duckdb

EVENTS_COLUMNS: dict[str, str] = {
    "event_hash": "VARCHAR",
    "event_type": "INTEGER",
    "event_time": "TIMESTAMP",
    "processing_date": "DATE",
    "user_email": "VARCHAR",
    "phone_number": "VARCHAR",
    "source_file": "VARCHAR",
    "line_number": "BIGINT",
    "ingested_at": "TIMESTAMP",
    "run_id": "VARCHAR",
}

REJECTED_COLUMNS: dict[str, str] = {
    "source_file": "VARCHAR",
    "line_number": "BIGINT",
    "raw_line": "VARCHAR",
    "reasons": "VARCHAR[]",
    "rejected_at": "TIMESTAMP",
    "run_id": "VARCHAR",
}

RECONCILIATION_COLUMNS: dict[str, str] = {
    "source_file": "VARCHAR",
    "file_sha256": "VARCHAR",
    "lines_total": "BIGINT",
    "valid": "BIGINT",
    "rejected": "BIGINT",
    "duplicates": "BIGINT",
    "stored_rows": "BIGINT",
    "missing_rows": "BIGINT",
    "unexpected_rows": "BIGINT",
    "mismatched_rows": "BIGINT",
    "passed": "BOOLEAN",
    "checked_at": "TIMESTAMP",
    "run_id": "VARCHAR",
}

# Internal index: each stored event's `hash_key` (first 64 bits of its hash), by file. The
# writer's duplicate probe scans this instead of `events.event_hash` (see store/writer.py).
EVENT_HASH_KEYS_COLUMNS: dict[str, str] = {
    "source_file": "VARCHAR",
    "hash_key": "UBIGINT",
}

TABLES: dict[str, dict[str, str]] = {
    "events": EVENTS_COLUMNS,
    "rejected_events": REJECTED_COLUMNS,
    "reconciliation_reports": RECONCILIATION_COLUMNS,
    "event_hash_keys": EVENT_HASH_KEYS_COLUMNS,
}

# Columns whose compression is chosen here rather than by DuckDB, per (table, column). A sha256
# in hex is random over 16 symbols: DuckDB's string compression halves it, but at 0.34 CPU-s per
# 1M rows, a quarter of the whole `events` INSERT, on the writer's thread, which bounds
# ingestion. Stored plain it takes 33 more bytes a row (56 -> 89 MB per 1M events), a trade the
# throughput goal wins. The setting is fixed when a table is created: a warehouse created
# earlier keeps DuckDB's choice, and both read alike. See docs/performance.md.
COLUMN_COMPRESSION: dict[tuple[str, str], str] = {("events", "event_hash"): "uncompressed"}

DUPLICATE_REASON = "duplicate_event"


def hash_key_sql(event_hash: str) -> str:
    """SQL for `hash_key`: the first 64 bits of an event hash as an integer.

    Only a probe key for the writer's duplicate search (8 bytes a row to scan instead of a
    64-character string); two events are duplicates only when their full hashes are equal.
    """
    return f"('0x' || left({event_hash}, 16))::UBIGINT"


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create every table if missing, so readers never meet an absent table.

    A warehouse written before `event_hash_keys` existed gets it filled from `events` once, as
    it is created: a missing key would let the writer miss a duplicate.
    """
    existing = {
        name
        for (name,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = 'main'"
        ).fetchall()
    }
    for table, columns in TABLES.items():
        body = ", ".join(_column_ddl(table, name, sql_type) for name, sql_type in columns.items())
        con.execute(f"CREATE TABLE IF NOT EXISTS main.{table} ({body})")
    if "event_hash_keys" not in existing and "events" in existing:
        con.execute(
            "INSERT INTO main.event_hash_keys "
            f"SELECT source_file, {hash_key_sql('event_hash')} FROM main.events"
        )


def _column_ddl(table: str, name: str, sql_type: str) -> str:
    compression = COLUMN_COMPRESSION.get((table, name))
    using = f" USING COMPRESSION {compression}" if compression else ""
    return f"{name} {sql_type}{using}"


def table_schema(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """The live column -> type mapping of a table, as DuckDB reports it."""
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return {name: data_type for name, data_type in rows}
