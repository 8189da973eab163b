"""The warehouse's schema version, and the numbered migrations from every older shape.

`CREATE TABLE IF NOT EXISTS` alone would leave a warehouse made by an older release on its old
shape, and the code would fail later on a missing column. So a warehouse records its version in
`schema_version` (one row per migration applied), a writable open brings an older one up to
date in one transaction, and any open refuses a warehouse it cannot read correctly with a
message naming both versions and what to do.

Warehouses written before `schema_version` existed are recognised by their shape:
1. `events`, `rejected_events` (`raw_line` text), `reconciliation_reports`;
2. 1 + `event_hash_keys`, the writer's duplicate probe index;
3. 2 + `ingestions`, `reconciliation_reports.ingest_run_id`, `raw_line` as bytes.
Version 4 (the line ledger's columns) and later are only ever recorded in `schema_version`.
Migrations are history: their DDL is literal, so a later change to a table spec cannot change
what an old migration does; the test builds each older shape and compares the result with the
specs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import duckdb

from event_platform.store.errors import SchemaVersionError
from event_platform.store.tables import DUPLICATE_REASON, SPECS, hash_key_sql

SCHEMA_VERSION = 4
VERSION_TABLE = "schema_version"
_VERSION_DDL = "CREATE TABLE {db}.main.schema_version (version INTEGER, migrated_at TIMESTAMP)"
# What an operator does about a warehouse older than this release, when it cannot be migrated
# where it was found (a read-only open).
HOW_TO_MIGRATE = (
    "open it once for writing with this release to migrate it (any `event-platform ingest` run "
    "or partition materialisation does)"
)
HOW_TO_UPGRADE = "upgrade event-platform, or point it at a warehouse this release wrote"


def _tables(con: duckdb.DuckDBPyConnection, database: str) -> set[str]:
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main'",
        [database],
    ).fetchall()
    return {name for (name,) in rows}


def _database(con: duckdb.DuckDBPyConnection, database: str | None) -> str:
    if database is not None:
        return database
    return con.execute("SELECT current_database()").fetchall()[0][0]


def schema_version(con: duckdb.DuckDBPyConnection, database: str | None = None) -> int | None:
    """The version of the warehouse in `database` (the current one by default); None if empty."""
    database = _database(con, database)
    tables = _tables(con, database)
    if VERSION_TABLE in tables:
        [(version,)] = con.execute(
            f'SELECT max(version) FROM "{database}".main.{VERSION_TABLE}'
        ).fetchall()
        if version is not None:
            return int(version)
    if not tables & set(SPECS):
        return None
    # Written before versions were recorded: the shape says which release wrote it.
    if "ingestions" in tables:
        return 3
    if "event_hash_keys" in tables:
        return 2
    return 1


def _to_2(con: duckdb.DuckDBPyConnection) -> None:
    """Add `event_hash_keys`, filled from `events`: a missing key would let the writer miss a
    duplicate."""
    con.execute("CREATE TABLE main.event_hash_keys (source_file VARCHAR, hash_key UBIGINT)")
    con.execute(
        "INSERT INTO main.event_hash_keys (source_file, hash_key) "
        f"SELECT source_file, {hash_key_sql('event_hash')} FROM main.events"
    )


def _to_3(con: duckdb.DuckDBPyConnection) -> None:
    """Record which run stored each partition (`ingestions`) and which a report reconciled;
    keep rejected lines as bytes.

    Reconciliation then ran only in the run that ingested, so a report's run is the
    ingestion's; a partition is recorded with the file digest of its latest report from that
    run (none: its stored version was never reconciled, and it is not served until it is).
    """
    con.execute("ALTER TABLE main.reconciliation_reports ADD COLUMN ingest_run_id VARCHAR")
    con.execute("UPDATE main.reconciliation_reports SET ingest_run_id = run_id")
    con.execute(
        "CREATE TABLE main.ingestions (source_file VARCHAR, run_id VARCHAR, file_sha256 VARCHAR, "
        "lines_total BIGINT, stored BIGINT, rejected BIGINT, duplicates BIGINT, "
        "ingested_at TIMESTAMP)"
    )
    con.execute(
        """
        INSERT INTO main.ingestions (source_file, run_id, file_sha256, lines_total, stored,
                                     rejected, duplicates, ingested_at)
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
    # Written before rejected lines were kept byte for byte: the text as it was stored.
    con.execute("ALTER TABLE main.rejected_events ALTER raw_line TYPE BLOB USING encode(raw_line)")


def _to_4(con: duckdb.DuckDBPyConnection) -> None:
    """Add the line ledger: each stored line's digest, a duplicate's event hash, and which
    reconciliation mode wrote a report.

    Older rows keep null digests, and reconciliation checks such a partition in full mode until
    it is ingested again. Every older report re-derived every line: it is a full one.
    """
    con.execute("ALTER TABLE main.events ADD COLUMN line_digest UBIGINT")
    con.execute("ALTER TABLE main.rejected_events ADD COLUMN line_digest UBIGINT")
    con.execute("ALTER TABLE main.rejected_events ADD COLUMN event_hash VARCHAR")
    con.execute("ALTER TABLE main.reconciliation_reports ADD COLUMN mode VARCHAR")
    con.execute("ALTER TABLE main.reconciliation_reports ADD COLUMN sample_seed BIGINT")
    con.execute("ALTER TABLE main.reconciliation_reports ADD COLUMN sample_lines BIGINT")
    con.execute("UPDATE main.reconciliation_reports SET mode = 'full'")


# MIGRATIONS[v] brings a warehouse from version v to v + 1.
MIGRATIONS: dict[int, Callable[[duckdb.DuckDBPyConnection], None]] = {
    1: _to_2,
    2: _to_3,
    3: _to_4,
}


def _newer_message(where: str, version: int) -> str:
    return (
        f"the warehouse {where} has schema version {version}, newer than this release's "
        f"{SCHEMA_VERSION}: it was written by a newer event-platform; {HOW_TO_UPGRADE}"
    )


def check_readable(
    con: duckdb.DuckDBPyConnection, where: str, database: str | None = None
) -> int | None:
    """Refuse a warehouse this release cannot read as it is; returns its version.

    For read-only opens and ATTACHes, which cannot migrate: an empty warehouse (None) is fine.
    """
    version = schema_version(con, database)
    if version is None or version == SCHEMA_VERSION:
        return version
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(_newer_message(where, version))
    raise SchemaVersionError(
        f"the warehouse {where} has schema version {version}, older than this release's "
        f"{SCHEMA_VERSION}, and is opened read-only here; {HOW_TO_MIGRATE}"
    )


def migrate(con: duckdb.DuckDBPyConnection, where: str = "in use") -> int | None:
    """Create a new warehouse's tables or bring an older one up to `SCHEMA_VERSION`, atomically.

    Returns the version found (None: it was empty). An up-to-date, versioned warehouse is only
    read, so opening it changes nothing in the file.
    """
    found = schema_version(con)
    if found is not None and found > SCHEMA_VERSION:
        raise SchemaVersionError(_newer_message(where, found))
    database = _database(con, None)
    tables = _tables(con, database)
    if found == SCHEMA_VERSION and VERSION_TABLE in tables:
        return found
    con.execute("BEGIN TRANSACTION")
    try:
        if found is None:
            for spec in SPECS.values():
                con.execute(spec.create_sql(if_not_exists=True))
        else:
            for version in range(found, SCHEMA_VERSION):
                MIGRATIONS[version](con)
        if VERSION_TABLE not in tables:
            con.execute(_VERSION_DDL.format(db=f'"{database}"'))
        con.execute(
            f"INSERT INTO main.{VERSION_TABLE} VALUES (?, ?)",
            [SCHEMA_VERSION, datetime.now(UTC).replace(tzinfo=None)],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return found
