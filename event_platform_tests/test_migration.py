"""A warehouse written by the previous release is brought up to date when it is opened."""

from __future__ import annotations

from pathlib import Path

import duckdb

from event_platform.reconcile.reconciliation import reconcile_partition
from event_platform.store.connection import connect
from event_platform.store.publication import publish_snapshot
from event_platform_tests.conftest import event_line, write_lines

# The previous release's tables, as it created them.
OLD_DDL = """
CREATE TABLE events (event_hash VARCHAR, event_type INTEGER, event_time TIMESTAMP,
    processing_date DATE, user_email VARCHAR, phone_number VARCHAR, source_file VARCHAR,
    line_number BIGINT, ingested_at TIMESTAMP, run_id VARCHAR);
CREATE TABLE rejected_events (source_file VARCHAR, line_number BIGINT, raw_line VARCHAR,
    reasons VARCHAR[], rejected_at TIMESTAMP, run_id VARCHAR);
CREATE TABLE reconciliation_reports (source_file VARCHAR, file_sha256 VARCHAR,
    lines_total BIGINT, valid BIGINT, rejected BIGINT, duplicates BIGINT, stored_rows BIGINT,
    missing_rows BIGINT, unexpected_rows BIGINT, mismatched_rows BIGINT, passed BOOLEAN,
    checked_at TIMESTAMP, run_id VARCHAR);
CREATE TABLE event_hash_keys (source_file VARCHAR, hash_key UBIGINT);
"""


def _old_warehouse(tmp_path: Path) -> tuple[Path, Path]:
    """A file ingested and reconciled by this release, then its tables put back in the old
    shape: what the previous release left behind."""
    source = write_lines(tmp_path / "old.jsonl", [event_line(i) for i in range(6)] + ["nope"])
    current = tmp_path / "current.duckdb"
    from event_platform.ingest.ingestion import ingest_file
    from event_platform.reconcile.reconciliation import record_report

    with connect(current) as con:
        ingest_file(source, con, run_id="old-run")
        record_report(con, reconcile_partition(source, con, run_id="old-run"))
    old = tmp_path / "old.duckdb"
    con = duckdb.connect(str(old))
    con.execute(OLD_DDL)
    con.execute(f"ATTACH '{current}' AS cur (READ_ONLY)")
    con.execute("INSERT INTO events SELECT * EXCLUDE (line_digest) FROM cur.events")
    con.execute(
        "INSERT INTO rejected_events SELECT source_file, line_number, decode(raw_line), reasons, "
        "rejected_at, run_id FROM cur.rejected_events"
    )
    con.execute(
        "INSERT INTO reconciliation_reports SELECT * EXCLUDE (ingest_run_id, mode, sample_seed, "
        "sample_lines) FROM cur.reconciliation_reports"
    )
    con.execute("INSERT INTO event_hash_keys SELECT * FROM cur.event_hash_keys")
    con.close()
    return old, source


def test_opening_an_old_warehouse_migrates_it_and_its_files_stay_served(tmp_path: Path) -> None:
    old, source = _old_warehouse(tmp_path)
    with connect(old) as con:
        assert con.execute(
            "SELECT source_file, run_id, lines_total, stored, rejected, duplicates FROM ingestions"
        ).fetchall() == [("old.jsonl", "old-run", 7, 6, 1, 0)]
        [(sha,)] = con.execute("SELECT file_sha256 FROM ingestions").fetchall()
        assert sha == con.execute("SELECT file_sha256 FROM reconciliation_reports").fetchone()[0]
        assert con.execute("SELECT ingest_run_id FROM reconciliation_reports").fetchall() == [
            ("old-run",)
        ]
        assert con.execute("SELECT raw_line FROM rejected_events").fetchall() == [(b"nope",)]
        # Stored without line digests: reconciled in full mode, and the report says so.
        report = reconcile_partition(source, con, run_id="again")
        assert report.passed and report.mode == "full" and "line digests" in (report.note or "")
    published = publish_snapshot(old, tmp_path / "published")
    assert (published.events, published.files_published) == (6, 1)


def test_a_second_open_changes_nothing(tmp_path: Path) -> None:
    old, _ = _old_warehouse(tmp_path)
    with connect(old):
        pass
    before = old.stat().st_mtime_ns
    with connect(old) as con:
        assert con.execute("SELECT count(*) FROM ingestions").fetchall() == [(1,)]
    assert old.stat().st_mtime_ns == before
