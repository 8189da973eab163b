"""Publication: only reconciled files are copied, the link swaps atomically, old snapshots go."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from event_platform.store.publication import CURRENT_NAME, current_snapshot, publish_snapshot
from event_platform_tests.unit.test_api import (
    CLASS_LINES,
    EVENTS_PER_FILE,
    MASKED_REASON_LINES,
    REJECTIONS,
    SERVED,
    build_warehouse,
)


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    build_warehouse(path)
    return path


def test_only_files_whose_latest_report_passed_are_published(warehouse, tmp_path):
    result = publish_snapshot(warehouse, tmp_path / "published")
    assert result.events == sum(EVENTS_PER_FILE[name] for name in SERVED)
    assert (result.files_published, result.files_failed) == (len(SERVED), 1)
    con = duckdb.connect(str(result.snapshot), read_only=True)
    try:
        files = {
            row[0] for row in con.execute("SELECT DISTINCT source_file FROM events").fetchall()
        }
        assert files == set(SERVED)
        assert con.execute("SELECT count(*) FROM rejected_events").fetchone()[0] == len(REJECTIONS)
        assert con.execute("SELECT count(*) FROM reconciliation_reports").fetchone()[0] == 6
        # stored sorted by the pagination key
        keys = con.execute("SELECT event_time, event_hash FROM events").fetchall()
        assert keys == sorted(keys)
        (daily,) = con.execute("SELECT sum(events) FROM daily_stats").fetchone()
        assert daily == result.events
    finally:
        con.close()


def test_reasons_are_kept_whole_and_counted_masked_and_by_class(warehouse, tmp_path):
    """The snapshot keeps every reason as stored; its masked and per-class counts count lines."""
    result = publish_snapshot(warehouse, tmp_path / "published")
    con = duckdb.connect(str(result.snapshot), read_only=True)
    try:
        stored = con.execute(
            "SELECT source_file, line_number, reasons FROM rejected_events ORDER BY ALL"
        ).fetchall()
        masked = con.execute(
            "SELECT reason, sum(lines)::BIGINT FROM rejection_reasons_masked GROUP BY ALL"
        ).fetchall()
        classes = con.execute(
            "SELECT reason_class, sum(lines)::BIGINT FROM rejection_reason_classes GROUP BY ALL"
        ).fetchall()
    finally:
        con.close()
    assert stored == sorted((f, n, r) for f, n, r in REJECTIONS)
    assert dict(masked) == MASKED_REASON_LINES
    assert dict(classes) == CLASS_LINES


def test_current_link_is_relative_and_old_snapshots_are_pruned(warehouse, tmp_path):
    published = tmp_path / "published"
    results = [publish_snapshot(warehouse, published) for _ in range(4)]
    link = published / CURRENT_NAME
    assert link.is_symlink()
    assert os.readlink(link) == results[-1].snapshot.name  # relative target
    assert current_snapshot(published) == results[-1].snapshot
    remaining = sorted(p.name for p in published.glob("snapshot-*.duckdb"))
    assert remaining == sorted([results[-2].snapshot.name, results[-1].snapshot.name])
    assert not list(published.glob(".*"))  # no temporary files left behind
    assert results[2].removed == [results[0].snapshot]


def test_a_missing_warehouse_publishes_empty_tables(tmp_path):
    result = publish_snapshot(tmp_path / "absent.duckdb", tmp_path / "published")
    assert result.events == 0
    assert not (tmp_path / "absent.duckdb").exists()  # never created by a reader


def test_publication_waits_for_a_writer_process_then_succeeds(warehouse, tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
            " time.sleep(1.5); c.close()",
            str(warehouse),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    started = time.monotonic()
    result = publish_snapshot(warehouse, tmp_path / "published", wait_seconds=20)
    assert time.monotonic() - started > 0.5
    assert result.events > 0
    holder.wait(timeout=10)


def test_the_dagster_asset_publishes(warehouse, tmp_path, monkeypatch):
    from event_platform.defs.resources import build_resources
    from event_platform.defs.serving.assets import published_events
    from event_platform.settings import Settings

    monkeypatch.setenv("EVENT_PLATFORM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("EVENT_PLATFORM_DUCKDB", str(warehouse))
    result = dg.materialize(
        [published_events],
        instance=dg.DagsterInstance.ephemeral(),
        resources=build_resources(Settings.from_env()),
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node("published_events")
    metadata = materialization.metadata
    assert metadata["dagster/row_count"].value == sum(EVENTS_PER_FILE[n] for n in SERVED)
    snapshot = Path(metadata["snapshot"].value)
    assert current_snapshot(tmp_path / "data" / "published") == snapshot


def test_a_stored_version_never_reconciled_is_not_served_under_an_older_report(tmp_path):
    """X.jsonl is ingested and reconciled; a different file of the same name is ingested and
    its run killed before reconciliation. The old version's passing report must not serve the
    new, never-reconciled rows; once the new version is reconciled, it is served."""
    from event_platform.ingest.ingestion import ingest_file
    from event_platform.reconcile import reconcile_partition, record_report
    from event_platform.store.connection import connect
    from event_platform_tests.conftest import event_line, write_lines

    warehouse = tmp_path / "warehouse.duckdb"
    source = tmp_path / "X.jsonl"
    with connect(warehouse) as con:
        write_lines(source, [event_line(i) for i in range(10)])
        ingest_file(source, con, run_id="v1")
        record_report(con, reconcile_partition(source, con, run_id="v1"))
        write_lines(source, [event_line(i) for i in range(100, 104)])
        ingest_file(source, con, run_id="v2")  # killed here, before its reconciliation
    unreconciled = publish_snapshot(warehouse, tmp_path / "published")
    assert (unreconciled.events, unreconciled.files_published) == (0, 0)

    with connect(warehouse) as con:
        record_report(con, reconcile_partition(source, con, run_id="check"))
    reconciled = publish_snapshot(warehouse, tmp_path / "published")
    assert (reconciled.events, reconciled.files_published) == (4, 1)
    con = duckdb.connect(str(reconciled.snapshot), read_only=True)
    try:
        assert con.execute("SELECT DISTINCT run_id FROM events").fetchall() == [("v2",)]
    finally:
        con.close()


def test_a_report_of_another_file_version_does_not_pass(tmp_path):
    """Reconciling after the landed file was replaced (not yet re-ingested) vouches for nothing:
    the file read is not the version stored."""
    from event_platform.ingest.ingestion import ingest_file
    from event_platform.reconcile import reconcile_partition
    from event_platform.store.connection import connect
    from event_platform_tests.conftest import event_line, write_lines

    source = write_lines(tmp_path / "X.jsonl", [event_line(i) for i in range(10)])
    with connect(tmp_path / "warehouse.duckdb") as con:
        ingest_file(source, con, run_id="v1")
        write_lines(source, [event_line(i) for i in range(10)] + [""])
        report = reconcile_partition(source, con, run_id="check")
    assert not report.passed
    assert report.ingest_run_id == "v1"
