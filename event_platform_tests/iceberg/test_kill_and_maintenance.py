"""A worker killed mid-write, between its commits or inside a commit to the catalog leaves
nothing partial that is served; a re-run completes; maintenance expires snapshots and removes
what the kills left."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from event_platform.generator import generate_file
from event_platform.ingest.ingestion import ingest_file
from event_platform.reconcile import reconcile_partition
from event_platform.store.iceberg import writer as iceberg_writer
from event_platform.store.iceberg.locks import libpq_dsn
from event_platform.store.iceberg.maintenance import maintain, referenced_files
from event_platform.store.iceberg.warehouse import IcebergWarehouse
from event_platform.store.publication import publish_snapshot


def _ingest(catalog_uri: str, location: str, scratch: str, path: str, kill_before: str) -> None:
    """Ingest `path`; with `kill_before`, SIGKILL this process just before that table's commit."""
    if kill_before:
        replace = iceberg_writer.replace_partition

        def dying(catalog, name, *args, **kwargs):
            if name == kill_before:
                os.kill(os.getpid(), signal.SIGKILL)
            return replace(catalog, name, *args, **kwargs)

        iceberg_writer.replace_partition = dying
    store = IcebergWarehouse(catalog_uri, location, scratch_dir=scratch)
    ingest_file(Path(path), store, run_id=f"run-{time.time_ns()}", workers=1)


def _start(tmp_path: Path, catalog_uri: str, path: Path, kill_before: str = ""):
    process = multiprocessing.get_context("spawn").Process(
        target=_ingest,
        args=(catalog_uri, str(tmp_path / "iceberg"), str(tmp_path), str(path), kill_before),
    )
    process.start()
    return process


def _run(tmp_path: Path, catalog_uri: str, path: Path, kill_before: str = "", kill_after=None):
    process = _start(tmp_path, catalog_uri, path, kill_before)
    if kill_after is not None:
        time.sleep(kill_after)
        os.kill(process.pid, signal.SIGKILL)
    process.join(300)
    return process.exitcode


def _published_events(store: IcebergWarehouse, folder: Path) -> int:
    with store.publication_source() as source:
        result = publish_snapshot(source, folder)
    return result.events


@pytest.mark.slow
def test_kills_leave_no_partial_partition_and_maintenance_cleans_up(
    tmp_path: Path, catalog_uri: str
) -> None:
    store = IcebergWarehouse(catalog_uri, str(tmp_path / "iceberg"), scratch_dir=str(tmp_path))
    path = tmp_path / "a.jsonl"
    truth = generate_file(path, 20_000, seed=5)
    assert _run(tmp_path, catalog_uri, path) == 0
    with store.partition(path.name) as con:
        store.record_report(con, reconcile_partition(path, con, run_id="check"))
    assert _published_events(store, tmp_path / "published") == truth.valid

    # The file lands again, changed; each attempt to store it is killed.
    changed = generate_file(path, 30_000, seed=6)
    assert _run(tmp_path, catalog_uri, path, kill_before="ingestions") == -signal.SIGKILL
    assert _run(tmp_path, catalog_uri, path, kill_before="rejected_events") == -signal.SIGKILL
    assert _run(tmp_path, catalog_uri, path, kill_after=1.0) == -signal.SIGKILL
    # The catalog loads, and the version that no passing reconciliation names is not served:
    # the new events committed before a kill carry a run no `ingestions` row names.
    assert _published_events(store, tmp_path / "published") == 0
    events = store.table("events").scan().to_arrow()  # noqa: F841 - read by the SQL below
    ingestions = store.table("ingestions").scan().to_arrow()  # noqa: F841
    [(served,)] = duckdb.execute(
        "SELECT count(*) FROM events e JOIN ingestions i USING (source_file, run_id)"
    ).fetchall()
    assert served in (0, truth.valid)

    # A re-run completes and reconciles; only then is the new version served.
    assert _run(tmp_path, catalog_uri, path) == 0
    with store.partition(path.name) as con:
        report = reconcile_partition(path, con, run_id="check")
        store.record_report(con, report)
    assert report.passed and report.valid == changed.valid
    assert _published_events(store, tmp_path / "published") == changed.valid

    # Maintenance: every snapshot but the current one expires, and every file nothing
    # references any more (the kills' and the expired versions') is removed.
    events_folder = tmp_path / "iceberg" / "event_platform" / "events"
    before = list(events_folder.rglob("*.parquet"))
    result = maintain(
        store.catalog, retention=timedelta(0), orphan_grace=timedelta(0),
        now=datetime.now(UTC) + timedelta(seconds=5),
    )  # fmt: skip
    assert result.expired_snapshots["events"] > 0 and result.removed_files["events"] > 0
    after = list(events_folder.rglob("*.parquet"))
    assert len(after) < len(before)
    assert {str(p) for p in events_folder.rglob("*") if p.is_file()} == referenced_files(
        store.table("events")
    )
    with store.partition(path.name) as con:
        assert reconcile_partition(path, con, run_id="check").passed
    assert _published_events(store, tmp_path / "published") == changed.valid


def test_the_maintenance_job_is_bound_with_iceberg_only_and_runs(backend_settings) -> None:
    import dagster as dg

    from event_platform.definitions import build_definitions

    definitions = build_definitions(backend_settings)
    names = {job.name for job in definitions.resolve_all_job_defs()}
    bound = "iceberg_maintenance_job" in names
    assert bound == (backend_settings.warehouse_backend == "iceberg")
    if bound:
        job = definitions.resolve_job_def("iceberg_maintenance_job")
        with dg.instance_for_test() as instance:
            assert job.execute_in_process(instance=instance).success


@contextmanager
def _catalog_row_locked(catalog_uri: str, table: str) -> Iterator[None]:
    """Hold a row lock on the table's `iceberg_tables` row, so that a worker's commit (an
    UPDATE of that row) blocks inside the catalog transaction until the lock is released."""
    import psycopg2

    con = psycopg2.connect(libpq_dsn(catalog_uri))
    try:
        with con.cursor() as cursor:
            cursor.execute(
                "SELECT metadata_location FROM iceberg_tables "
                "WHERE table_namespace = %s AND table_name = %s FOR UPDATE",
                ("event_platform", table),
            )
            assert cursor.fetchone() is not None
        yield
    finally:
        con.rollback()
        con.close()


def _poll(catalog_uri: str, query: str, params: tuple, until, timeout: float):
    """Repeat `query` on a connection of its own (autocommit: pg_stat_activity is read once
    per transaction) until `until(row)`; returns that row."""
    import psycopg2

    con = psycopg2.connect(libpq_dsn(catalog_uri))
    con.autocommit = True
    deadline = time.monotonic() + timeout
    try:
        with con.cursor() as cursor:
            while time.monotonic() < deadline:
                cursor.execute(query, params)
                row = cursor.fetchone()
                if until(row):
                    return row
                time.sleep(0.1)
    finally:
        con.close()
    raise AssertionError(f"timed out after {timeout:.0f}s waiting on: {query}")


def _blocked_commit(catalog_uri: str) -> int:
    """The backend pid of a worker's catalog commit waiting for the held row lock."""
    query = (
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND query ILIKE 'UPDATE iceberg_tables%%'"
    )
    return _poll(catalog_uri, query, (), lambda row: row is not None, 120.0)[0]


def _backend_gone(catalog_uri: str, pid: int) -> None:
    query = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s"
    _poll(catalog_uri, query, (pid,), lambda row: row[0] == 0, 30.0)


@pytest.mark.slow
@pytest.mark.parametrize("table", ["events", "ingestions"])
def test_kill_inside_the_catalog_commit(tmp_path: Path, catalog_uri: str, table: str) -> None:
    """SIGKILL while the worker's UPDATE of the catalog row waits for a row lock: the new
    metadata file is written but the catalog transaction never commits. `events` is the
    first of the four commits (the old version stays whole and served); `ingestions` the last
    (the new rows of the other tables carry a run nothing vouches for, so none is served)."""
    store = IcebergWarehouse(catalog_uri, str(tmp_path / "iceberg"), scratch_dir=str(tmp_path))
    path = tmp_path / "a.jsonl"
    truth = generate_file(path, 20_000, seed=5)
    assert _run(tmp_path, catalog_uri, path) == 0
    with store.partition(path.name) as con:
        store.record_report(con, reconcile_partition(path, con, run_id="check"))
    assert _published_events(store, tmp_path / "published") == truth.valid
    committed = store.table(table).metadata_location
    metadata_folder = tmp_path / "iceberg" / "event_platform" / table / "metadata"
    metadata_before = set(metadata_folder.glob("*.metadata.json"))

    changed = generate_file(path, 30_000, seed=6)
    with _catalog_row_locked(catalog_uri, table):
        worker = _start(tmp_path, catalog_uri, path)
        try:
            waiting = _blocked_commit(catalog_uri)
        finally:
            os.kill(worker.pid, signal.SIGKILL)
            worker.join(60)
    assert worker.exitcode == -signal.SIGKILL
    # Released, the UPDATE may run, but its transaction ends with the dead client, uncommitted.
    _backend_gone(catalog_uri, waiting)

    # The catalog loads (a fresh process's view), still at the version before the kill; the
    # killed commit's metadata file exists and nothing references it.
    after_kill = IcebergWarehouse(catalog_uri, str(tmp_path / "iceberg"), scratch_dir=str(tmp_path))
    assert after_kill.table(table).metadata_location == committed
    written = {str(p) for p in set(metadata_folder.glob("*.metadata.json")) - metadata_before}
    orphans = written - referenced_files(after_kill.table(table))
    assert orphans, "the kill was not inside the commit: no unreferenced metadata file"
    events = after_kill.table("events").scan().to_arrow()  # noqa: F841 - read by the SQL below
    ingestions = after_kill.table("ingestions").scan().to_arrow()  # noqa: F841
    [(served, runs)] = duckdb.execute(
        "SELECT count(*), count(DISTINCT e.run_id) "
        "FROM events e JOIN ingestions i USING (source_file, run_id)"
    ).fetchall()
    if table == "events":
        # Nothing of the new version landed: the old one is whole and still served.
        assert (served, runs) == (truth.valid, 1)
        assert _published_events(after_kill, tmp_path / "published") == truth.valid
    else:
        # `events` holds the new run, `ingestions` still the old one: nothing is served.
        assert served == 0
        assert _published_events(after_kill, tmp_path / "published") == 0

    # A re-run completes and reconciles; only then is the new version served.
    assert _run(tmp_path, catalog_uri, path) == 0
    with after_kill.partition(path.name) as con:
        report = reconcile_partition(path, con, run_id="check")
        after_kill.record_report(con, report)
    assert report.passed and report.valid == changed.valid
    assert _published_events(after_kill, tmp_path / "published") == changed.valid

    # Orphan cleanup removes the killed commit's metadata and data files.
    result = maintain(
        after_kill.catalog, retention=timedelta(0), orphan_grace=timedelta(0),
        now=datetime.now(UTC) + timedelta(seconds=5),
    )  # fmt: skip
    assert result.removed_files[table] > 0
    assert not any(Path(orphan).exists() for orphan in orphans)
    table_folder = tmp_path / "iceberg" / "event_platform" / table
    assert {str(p) for p in table_folder.rglob("*") if p.is_file()} == referenced_files(
        after_kill.table(table)
    )
    with after_kill.partition(path.name) as con:
        assert reconcile_partition(path, con, run_id="check").passed
    assert _published_events(after_kill, tmp_path / "published") == changed.valid
