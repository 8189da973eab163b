"""A warehouse written by an older release is migrated when opened for writing, refused with
what to do when opened read-only, and a newer one is refused outright."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from event_platform.ingest.ingestion import ingest_file
from event_platform.reconcile import reconcile_partition, record_report
from event_platform.store.connection import SchemaVersionError, connect
from event_platform.store.migrations import SCHEMA_VERSION, schema_version
from event_platform.store.publication import publish_snapshot
from event_platform.store.schema import table_schema
from event_platform.store.tables import SPECS
from event_platform_tests.conftest import event_line, write_lines

# Each older release's tables, exactly as it created them (see git history of store/schema.py).
V1_DDL = """
CREATE TABLE events (event_hash VARCHAR, event_type INTEGER, event_time TIMESTAMP,
    processing_date DATE, user_email VARCHAR, phone_number VARCHAR, source_file VARCHAR,
    line_number BIGINT, ingested_at TIMESTAMP, run_id VARCHAR);
CREATE TABLE rejected_events (source_file VARCHAR, line_number BIGINT, raw_line VARCHAR,
    reasons VARCHAR[], rejected_at TIMESTAMP, run_id VARCHAR);
CREATE TABLE reconciliation_reports (source_file VARCHAR, file_sha256 VARCHAR,
    lines_total BIGINT, valid BIGINT, rejected BIGINT, duplicates BIGINT, stored_rows BIGINT,
    missing_rows BIGINT, unexpected_rows BIGINT, mismatched_rows BIGINT, passed BOOLEAN,
    checked_at TIMESTAMP, run_id VARCHAR);
"""
V2_DDL = V1_DDL + "CREATE TABLE event_hash_keys (source_file VARCHAR, hash_key UBIGINT);"
# The last shape without `schema_version`.
V3_DDL = """
CREATE TABLE events (event_hash VARCHAR USING COMPRESSION uncompressed, event_type INTEGER,
    event_time TIMESTAMP, processing_date DATE, user_email VARCHAR, phone_number VARCHAR,
    source_file VARCHAR, line_number BIGINT, ingested_at TIMESTAMP, run_id VARCHAR);
CREATE TABLE rejected_events (source_file VARCHAR, line_number BIGINT, raw_line BLOB,
    reasons VARCHAR[], rejected_at TIMESTAMP, run_id VARCHAR);
CREATE TABLE reconciliation_reports (source_file VARCHAR, file_sha256 VARCHAR,
    lines_total BIGINT, valid BIGINT, rejected BIGINT, duplicates BIGINT, stored_rows BIGINT,
    missing_rows BIGINT, unexpected_rows BIGINT, mismatched_rows BIGINT, passed BOOLEAN,
    checked_at TIMESTAMP, run_id VARCHAR, ingest_run_id VARCHAR);
CREATE TABLE event_hash_keys (source_file VARCHAR, hash_key UBIGINT);
CREATE TABLE ingestions (source_file VARCHAR, run_id VARCHAR, file_sha256 VARCHAR,
    lines_total BIGINT, stored BIGINT, rejected BIGINT, duplicates BIGINT,
    ingested_at TIMESTAMP);
"""
# Version 3 as a release that recorded versions left it: the same tables and `schema_version`.
V3_VERSIONED_DDL = (
    V3_DDL
    + """
CREATE TABLE schema_version (version INTEGER, migrated_at TIMESTAMP);
INSERT INTO schema_version VALUES (3, TIMESTAMP '2025-01-01 00:00:00');
"""
)
OLD_SHAPES = {1: V1_DDL, 2: V2_DDL, 3: V3_DDL}

# How each older shape's rows are read from a warehouse of today (the line ledger's columns
# and the report's mode are what versions before 4 lack).
_OLD_EVENTS = (
    "INSERT INTO events SELECT event_hash, event_type, event_time, processing_date, user_email, "
    "phone_number, source_file, line_number, ingested_at, run_id FROM cur.events"
)
_COPIES = {
    1: [
        _OLD_EVENTS,
        "INSERT INTO rejected_events SELECT source_file, line_number, decode(raw_line), "
        "reasons, rejected_at, run_id FROM cur.rejected_events",
        "INSERT INTO reconciliation_reports SELECT * EXCLUDE (ingest_run_id, mode, sample_seed, "
        "sample_lines) FROM cur.reconciliation_reports",
    ],
}
_COPIES[2] = [*_COPIES[1], "INSERT INTO event_hash_keys SELECT * FROM cur.event_hash_keys"]
_COPIES[3] = [
    _OLD_EVENTS,
    "INSERT INTO rejected_events SELECT source_file, line_number, raw_line, reasons, "
    "rejected_at, run_id FROM cur.rejected_events",
    "INSERT INTO reconciliation_reports SELECT * EXCLUDE (mode, sample_seed, sample_lines) "
    "FROM cur.reconciliation_reports",
    "INSERT INTO event_hash_keys SELECT * FROM cur.event_hash_keys",
    "INSERT INTO ingestions SELECT * FROM cur.ingestions",
]


def _old_warehouse(tmp_path: Path, version: int, *, versioned: bool = False) -> tuple[Path, Path]:
    """A file ingested and reconciled by this release, then copied into an older release's
    tables: what that release left behind (`versioned`: version 3 with `schema_version`)."""
    source = write_lines(tmp_path / "old.jsonl", [event_line(i) for i in range(6)] + ["nope"])
    current = tmp_path / "current.duckdb"
    with connect(current) as con:
        ingest_file(source, con, run_id="old-run")
        record_report(con, reconcile_partition(source, con, run_id="old-run"))
    old = tmp_path / f"v{version}.duckdb"
    con = duckdb.connect(str(old))
    con.execute(V3_VERSIONED_DDL if versioned else OLD_SHAPES[version])
    con.execute(f"ATTACH '{current}' AS cur (READ_ONLY)")
    for statement in _COPIES[version]:
        con.execute(statement)
    con.close()
    current.unlink()
    return old, source


@pytest.mark.parametrize("version", sorted(OLD_SHAPES))
def test_an_older_warehouse_is_recognised_by_its_shape(tmp_path: Path, version: int) -> None:
    old, _ = _old_warehouse(tmp_path, version)
    con = duckdb.connect(str(old), read_only=True)
    try:
        assert schema_version(con) == version
    finally:
        con.close()


@pytest.mark.parametrize("version", sorted(OLD_SHAPES))
def test_opening_an_old_warehouse_migrates_it_and_its_files_stay_served(
    tmp_path: Path, version: int
) -> None:
    old, source = _old_warehouse(tmp_path, version)
    with connect(old) as con:
        assert schema_version(con) == SCHEMA_VERSION
        for name, spec in SPECS.items():
            assert table_schema(con, name) == spec.types, name
        assert con.execute("SELECT count(*) FROM events").fetchall() == [(6,)]
        assert con.execute("SELECT count(*) FROM event_hash_keys").fetchall() == [(6,)]
        assert con.execute(
            "SELECT source_file, run_id, lines_total, stored, rejected, duplicates FROM ingestions"
        ).fetchall() == [("old.jsonl", "old-run", 7, 6, 1, 0)]
        [(sha,)] = con.execute("SELECT file_sha256 FROM ingestions").fetchall()
        assert sha == con.execute("SELECT file_sha256 FROM reconciliation_reports").fetchone()[0]
        assert con.execute("SELECT ingest_run_id FROM reconciliation_reports").fetchall() == [
            ("old-run",)
        ]
        assert con.execute("SELECT raw_line FROM rejected_events").fetchall() == [(b"nope",)]
        report = reconcile_partition(source, con, run_id="again")
        assert report.passed and report.mode == "full"
    published = publish_snapshot(old, tmp_path / "published")
    assert (published.events, published.files_published) == (6, 1)


def test_a_warehouse_from_before_the_key_index_still_catches_duplicates(tmp_path: Path) -> None:
    """`event_hash_keys` is filled from `events` when an older warehouse is first opened."""
    old, _ = _old_warehouse(tmp_path, 1)
    second = write_lines(tmp_path / "b.jsonl", [event_line(2), event_line(30)])
    with connect(old) as con:
        assert con.execute("SELECT count(*) FROM event_hash_keys").fetchone()[0] == 6
        result = ingest_file(second, con, run_id="r2")
    assert (result.stored, result.duplicates) == (1, 1)


@pytest.mark.parametrize("version", sorted(OLD_SHAPES))
def test_a_second_open_changes_nothing(tmp_path: Path, version: int) -> None:
    old, _ = _old_warehouse(tmp_path, version)
    with connect(old):
        pass
    before = old.stat().st_mtime_ns
    with connect(old) as con:
        assert con.execute("SELECT count(*) FROM ingestions").fetchall() == [(1,)]
        assert con.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    assert old.stat().st_mtime_ns == before


def test_a_new_warehouse_records_its_version(tmp_path: Path) -> None:
    with connect(tmp_path / "new.duckdb") as con:
        assert con.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        for name, spec in SPECS.items():
            assert table_schema(con, name) == spec.types, name


@pytest.mark.parametrize("version", [1, 2, 3])
def test_a_read_only_open_of_an_outdated_warehouse_says_what_to_do(
    tmp_path: Path, version: int
) -> None:
    old, _ = _old_warehouse(tmp_path, version)
    before = old.stat().st_mtime_ns
    with pytest.raises(SchemaVersionError) as raised, connect(old, read_only=True):
        pass
    message = str(raised.value)
    assert f"schema version {version}" in message and f"{SCHEMA_VERSION}" in message
    assert str(old) in message and "open it once for writing" in message
    with pytest.raises(SchemaVersionError, match=f"schema version {version}"):
        publish_snapshot(old, tmp_path / "published")
    assert old.stat().st_mtime_ns == before


def test_a_version_3_warehouse_gains_the_line_ledger_and_reconciles_in_full(
    tmp_path: Path,
) -> None:
    """Version 3 to 4: the ledger's columns are added, the rows kept with null digests, the old
    report marked full; a partition without digests falls back from ledger to full mode."""
    old, source = _old_warehouse(tmp_path, 3, versioned=True)
    con = duckdb.connect(str(old), read_only=True)
    try:
        assert schema_version(con) == 3
    finally:
        con.close()
    with connect(old) as con:
        assert con.execute("SELECT max(version) FROM schema_version").fetchall() == [(4,)]
        for name, spec in SPECS.items():
            assert table_schema(con, name) == spec.types, name
        assert con.execute(
            "SELECT count(*), count(line_digest) FROM events WHERE source_file = 'old.jsonl'"
        ).fetchall() == [(6, 0)]
        assert con.execute(
            "SELECT raw_line, reasons, line_digest, event_hash FROM rejected_events"
        ).fetchall() == [(b"nope", ["malformed_json"], None, None)]
        assert con.execute(
            "SELECT mode, sample_seed, sample_lines, passed FROM reconciliation_reports"
        ).fetchall() == [("full", None, None, True)]
        report = reconcile_partition(source, con, run_id="again", mode="ledger")
        assert report.passed, report
        assert (report.mode, report.sample_seed, report.sample_lines) == ("full", None, None)
        assert report.note and "full" in report.note
        record_report(con, report)
        # Ingested again, the partition carries digests and is reconciled by its ledger.
        ingest_file(source, con, run_id="new-run")
        again = reconcile_partition(source, con, run_id="after", mode="ledger")
        assert again.passed and again.mode == "ledger" and again.note is None
        record_report(con, again)
    published = publish_snapshot(old, tmp_path / "published")
    assert published.events == 6


def _newer(tmp_path: Path) -> Path:
    path = tmp_path / "newer.duckdb"
    with connect(path) as con:
        con.execute("INSERT INTO schema_version VALUES (?, now())", [SCHEMA_VERSION + 1])
    return path


def test_a_newer_warehouse_is_refused(tmp_path: Path) -> None:
    path = _newer(tmp_path)
    before = path.stat().st_mtime_ns
    for read_only in (False, True):
        with pytest.raises(SchemaVersionError) as raised, connect(path, read_only=read_only):
            pass
        message = str(raised.value)
        assert f"schema version {SCHEMA_VERSION + 1}, newer than this release's " in message
        assert f"{SCHEMA_VERSION}" in message and "upgrade event-platform" in message
    with pytest.raises(SchemaVersionError, match="newer than this release"):
        publish_snapshot(path, tmp_path / "published")
    assert path.stat().st_mtime_ns == before


def test_a_failed_migration_leaves_the_old_warehouse_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from event_platform.store import migrations

    old, _ = _old_warehouse(tmp_path, 1)

    def broken(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("SELECT * FROM no_such_table")

    monkeypatch.setitem(migrations.MIGRATIONS, 2, broken)
    with pytest.raises(Exception, match="no_such_table"), connect(old):
        pass
    monkeypatch.undo()
    con = duckdb.connect(str(old), read_only=True)
    try:
        assert schema_version(con) == 1
        assert table_schema(con, "rejected_events")["raw_line"] == "VARCHAR"
    finally:
        con.close()
