"""A partition is committed to Iceberg batch by batch, so that its size does not set the
worker's memory: still one catalog commit per table, one copy of each row, and a worker killed
between batches leaves the previous version whole and only orphan files behind."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from event_platform.generator import generate_file
from event_platform.ingest.ingestion import ingest_file
from event_platform.reconcile import reconcile_partition
from event_platform.store.iceberg import io as iceberg_io
from event_platform.store.iceberg.maintenance import maintain, referenced_files
from event_platform.store.iceberg.warehouse import IcebergWarehouse

# Small enough that a 20,000-line partition takes many batches.
SMALL_BATCH_BYTES = 256 * 1024
SMALL_READ_ROWS = 1_024


def _small_batches(monkeypatch_or_module) -> None:
    monkeypatch_or_module.setattr(iceberg_io, "BATCH_BYTES", SMALL_BATCH_BYTES)
    monkeypatch_or_module.setattr(iceberg_io, "_READ_ROWS", SMALL_READ_ROWS)


def _partition_files(store: IcebergWarehouse, table: str, source_file: str) -> list[str]:
    from pyiceberg.expressions import EqualTo

    scan = store.table(table).scan(row_filter=EqualTo("source_file", source_file))
    return [task.file.file_path for task in scan.plan_files()]


def test_a_partition_of_many_batches_is_replaced_whole_in_one_commit(
    tmp_path: Path, iceberg: IcebergWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    _small_batches(monkeypatch)
    path = tmp_path / "a.jsonl"
    generate_file(path, 20_000, seed=1, days=5)
    ingest_file(path, iceberg, run_id="first", workers=1)
    first_files = set(_partition_files(iceberg, "events", path.name))
    assert len(first_files) > 1, "the partition was not written in several batches"
    commits_before = {
        name: len(iceberg.table(name).metadata.metadata_log)
        for name in ("events", "rejected_events", "event_hash_keys", "ingestions")
    }

    changed = generate_file(path, 25_000, seed=2, days=5)
    ingest_file(path, iceberg, run_id="second", workers=1)

    # One new metadata version per table: the delete and every batch's files are one commit.
    for name, before in commits_before.items():
        assert len(iceberg.table(name).metadata.metadata_log) == before + 1, name
    assert first_files.isdisjoint(_partition_files(iceberg, "events", path.name))
    with iceberg.partition(path.name) as con:
        stored = con.execute(
            "SELECT count(*), count(DISTINCT event_hash), count(DISTINCT run_id), min(run_id) "
            "FROM events"
        ).fetchone()
        keys = con.execute("SELECT count(*) FROM event_hash_keys").fetchone()
        report = reconcile_partition(path, con, run_id="check")
    assert stored == (changed.valid, changed.valid, 1, "second")
    assert keys == (changed.valid,)
    assert report.passed and report.valid == changed.valid


def _ingest_and_die_after(catalog_uri: str, location: str, scratch: str, path: str) -> None:
    """Ingest with small batches; SIGKILL this process once the second batch of `events`
    has been handed to pyiceberg (its files written, nothing committed)."""
    _small_batches(pytest.MonkeyPatch())
    batches = iceberg_io.partition_batches

    def dying(con, table, name, select, params):
        for number, batch in enumerate(batches(con, table, name, select, params), start=1):
            if name == "events" and number == 3:
                os.kill(os.getpid(), signal.SIGKILL)
            yield batch

    iceberg_io.partition_batches = dying
    import event_platform.store.iceberg.writer as writer

    writer.partition_batches = dying
    store = IcebergWarehouse(catalog_uri, location, scratch_dir=scratch)
    ingest_file(Path(path), store, run_id=f"run-{time.time_ns()}", workers=1)


def test_a_worker_killed_between_batches_leaves_the_old_version_and_orphans(
    tmp_path: Path, catalog_uri: str
) -> None:
    location = str(tmp_path / "iceberg")
    store = IcebergWarehouse(catalog_uri, location, scratch_dir=str(tmp_path))
    path = tmp_path / "a.jsonl"
    truth = generate_file(path, 20_000, seed=1, days=5)
    ingest_file(path, store, run_id="first", workers=1)
    generate_file(path, 25_000, seed=2, days=5)

    worker = multiprocessing.get_context("spawn").Process(
        target=_ingest_and_die_after, args=(catalog_uri, location, str(tmp_path), str(path))
    )
    worker.start()
    worker.join(300)
    assert worker.exitcode == -signal.SIGKILL

    fresh = IcebergWarehouse(catalog_uri, location, scratch_dir=str(tmp_path))
    with fresh.partition(path.name) as con:
        assert con.execute("SELECT count(*), min(run_id), max(run_id) FROM events").fetchone() == (
            truth.valid,
            "first",
            "first",
        )
    events_folder = Path(location) / "event_platform" / "events"
    written = {str(p) for p in events_folder.rglob("*.parquet")}
    orphans = written - referenced_files(fresh.table("events"))
    assert orphans, "the kill left no file of the unfinished batches"

    result = maintain(
        fresh.catalog,
        retention=timedelta(days=1),
        orphan_grace=timedelta(0),
        now=datetime.now(UTC) + timedelta(seconds=5),
    )
    assert result.removed_files["events"] >= len(orphans)
    assert not any(Path(orphan).exists() for orphan in orphans)
