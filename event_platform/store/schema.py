"""The one place that knows the warehouse's table DDL.

`events` has no PRIMARY KEY on purpose: an ART index makes bulk inserts several times slower,
the file much bigger, and lives in memory; uniqueness of `event_hash` is enforced by the
writer's anti-join and watched by an asset check instead.
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
    "raw_line": "BLOB",
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
    # The ingestion run whose rows were reconciled (`ingestions.run_id`).
    "ingest_run_id": "VARCHAR",
}

# One row per stored partition: the run that stored it and the file version it read. Replaced
# with the partition's rows, in the same transaction.
INGESTIONS_COLUMNS: dict[str, str] = {
    "source_file": "VARCHAR",
    "run_id": "VARCHAR",
    "file_sha256": "VARCHAR",
    "lines_total": "BIGINT",
    "stored": "BIGINT",
    "rejected": "BIGINT",
    "duplicates": "BIGINT",
    "ingested_at": "TIMESTAMP",
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
    "ingestions": INGESTIONS_COLUMNS,
}

# Columns whose compression is chosen here rather than by DuckDB, per (table, column). A sha256
# in hex is random over 16 symbols: DuckDB's string compression halves it but costs a quarter of
# the `events` INSERT, on the writer's thread, which bounds ingestion; plain costs 33 bytes a row
# more. The setting is fixed when a table is created: a warehouse created earlier keeps DuckDB's
# choice, and both read alike. Figures in docs/performance.md.
COLUMN_COMPRESSION: dict[tuple[str, str], str] = {("events", "event_hash"): "uncompressed"}

DUPLICATE_REASON = "duplicate_event"


def hash_key_sql(event_hash: str) -> str:
    """SQL for `hash_key`: the first 64 bits of an event hash as an integer.

    Only a probe key for the writer's duplicate search (8 bytes a row to scan instead of a
    64-character string); two events are duplicates only when their full hashes are equal.
    """
    return f"('0x' || left({event_hash}, 16))::UBIGINT"


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create every missing table and bring an older warehouse's tables up to date, atomically.

    Readers never meet an absent table. A warehouse written by an older release is migrated
    once, in one transaction: `event_hash_keys` is filled from `events` (a missing key would let
    the writer miss a duplicate), `ingestions` from the stored rows, and `raw_line` becomes
    bytes.
    """
    existing = {
        name
        for (name,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = 'main'"
        ).fetchall()
    }
    if existing >= set(TABLES) and not _outdated(con):
        return
    con.execute("BEGIN TRANSACTION")
    try:
        for table, columns in TABLES.items():
            body = ", ".join(
                _column_ddl(table, name, sql_type) for name, sql_type in columns.items()
            )
            con.execute(f"CREATE TABLE IF NOT EXISTS main.{table} ({body})")
        if "event_hash_keys" not in existing and "events" in existing:
            con.execute(
                "INSERT INTO main.event_hash_keys "
                f"SELECT source_file, {hash_key_sql('event_hash')} FROM main.events"
            )
        if "ingest_run_id" not in table_schema(con, "reconciliation_reports"):
            # Reconciliation used to run only in the run that ingested, whose id it recorded.
            con.execute("ALTER TABLE main.reconciliation_reports ADD COLUMN ingest_run_id VARCHAR")
            con.execute("UPDATE main.reconciliation_reports SET ingest_run_id = run_id")
        if "ingestions" not in existing and "reconciliation_reports" in existing:
            _add_ingestions(con)
        if table_schema(con, "rejected_events").get("raw_line") == "VARCHAR":
            # Written before rejected lines were kept byte for byte: the text as it was stored.
            con.execute(
                "ALTER TABLE main.rejected_events ALTER raw_line TYPE BLOB USING encode(raw_line)"
            )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _outdated(con: duckdb.DuckDBPyConnection) -> bool:
    return table_schema(con, "rejected_events").get(
        "raw_line"
    ) == "VARCHAR" or "ingest_run_id" not in table_schema(con, "reconciliation_reports")


def _add_ingestions(con: duckdb.DuckDBPyConnection) -> None:
    """Fill `ingestions` for a warehouse written before it existed.

    Reconciliation then ran in the run that ingested, so a report's run is the ingestion's; a
    partition is recorded with the file digest of its latest report from that run (none: its
    stored version was never reconciled, and it is not served until it is).
    """
    con.execute(
        """
        INSERT INTO main.ingestions
        WITH stored AS (
            SELECT source_file, any_value(run_id) AS run_id,
                   count(*) FILTER (WHERE place = 'event') AS stored,
                   count(*) FILTER (WHERE place = 'rejected') AS rejected,
                   count(*) FILTER (WHERE place = 'duplicate') AS duplicates,
                   max(stored_at) AS ingested_at
            FROM (
                SELECT source_file, run_id, 'event' AS place, ingested_at AS stored_at
                FROM main.events
                UNION ALL
                SELECT source_file, run_id,
                       CASE WHEN reasons = [$duplicate] THEN 'duplicate' ELSE 'rejected' END,
                       rejected_at
                FROM main.rejected_events
            )
            GROUP BY source_file
        )
        SELECT s.source_file, s.run_id,
               (SELECT r.file_sha256 FROM main.reconciliation_reports r
                WHERE r.source_file = s.source_file AND r.run_id = s.run_id
                ORDER BY r.checked_at DESC LIMIT 1),
               s.stored + s.rejected + s.duplicates, s.stored, s.rejected, s.duplicates,
               s.ingested_at
        FROM stored s
        """,
        {"duplicate": DUPLICATE_REASON},
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
