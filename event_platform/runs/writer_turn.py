"""Wait, visibly and interruptibly, for the warehouse writer before a CLI run starts.

DuckDB admits one writing process per file. Runs launched by the daemon queue for the
`duckdb_writer` pool (granularity `run`: a run holds it from start to end). A CLI run is not
queued, so the CLI takes its turn here first: a lock file beside the warehouse orders the CLI
processes (the kernel drops it when a process dies, so a killed CLI never keeps it), and runs
of the instance that hold the pool are waited out, after dead ones are failed
(`reap_dead_runs`). Dagster's own in-run wait for a pool spins a core and defers signals; this
one sleeps, says whom it waits for, and stops at once on SIGINT or SIGTERM.

On the Iceberg backend writers do not exclude each other (each commit is atomic and the
advisory locks settle duplicates), so a CLI run takes no writer turn: it takes one of
`EVENT_PLATFORM_ICEBERG_WRITERS` slots on this machine when that limit is set, to bound the
CPU and memory of many `ingest` processes started at once, and none otherwise. Publication
stays one at a time, since two publishers would prune each other's snapshots.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from dagster._core.storage.dagster_run import ACTIVE_RUN_STATUSES, RunsFilter
from filelock import FileLock, Timeout

from event_platform.runs.reaper import reap_dead_runs
from event_platform.store.connection import WarehouseError

if TYPE_CHECKING:
    from event_platform.settings import Settings

WRITER_POOL = "duckdb_writer"
POLL_SECONDS = 0.5
# How often a waiting CLI repeats whom it waits for.
REMIND_SECONDS = 30.0


def writer_holders(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    """Runs of the instance that hold the writer pool now."""
    records = instance.get_run_records(filters=RunsFilter(statuses=ACTIVE_RUN_STATUSES))
    return [
        record.dagster_run
        for record in records
        if record.dagster_run.run_op_concurrency
        and WRITER_POOL in (record.dagster_run.run_op_concurrency.all_pools or ())
    ]


def describe_run(run: dg.DagsterRun) -> str:
    partition = run.tags.get("dagster/partition")
    trigger = run.tags.get("event_platform/trigger") or (
        "the sensor" if run.tags.get("dagster/sensor_name") else "Dagster"
    )
    what = f" ingesting {partition}" if partition else ""
    return f"run {run.run_id[:8]}{what} (started by {trigger})"


@contextmanager
def writer_turn(
    warehouse: Path,
    instance: dg.DagsterInstance | None,
    *,
    tell: Callable[[str], None],
) -> Iterator[float]:
    """Hold the writer for the block; yields the seconds spent waiting for it.

    `tell` receives one line when waiting starts, a reminder every `REMIND_SECONDS`, and one
    line for each dead run that was failed to free the writer.
    """
    lock = FileLock(str(warehouse) + ".writer.lock")
    try:
        warehouse.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire(timeout=0)
        lock.release()
    except Timeout:
        pass
    except OSError as exc:
        raise WarehouseError(
            f"cannot take the warehouse writer's lock {lock.lock_file}: {exc.strerror or exc}"
        ) from exc
    started = time.monotonic()
    told_at: float | None = None
    while True:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            holders = writer_holders(instance) if instance and instance.is_persistent else []
            holder = ", ".join(describe_run(run) for run in holders) or (
                "another event-platform process"
            )
        else:
            holders = []
            if instance is not None and instance.is_persistent:
                for reaped in reap_dead_runs(instance):
                    tell(reaped.describe())
                holders = writer_holders(instance)
            if not holders:
                break
            lock.release()
            holder = ", ".join(describe_run(run) for run in holders)
        now = time.monotonic()
        if told_at is None or now - told_at >= REMIND_SECONDS:
            waited = f" ({now - started:.0f}s so far)" if told_at is not None else ""
            tell(f"waiting for the warehouse writer, held by {holder}{waited}")
            told_at = now
        time.sleep(POLL_SECONDS)
    try:
        yield time.monotonic() - started
    finally:
        lock.release()


@contextmanager
def cli_turn(
    settings: Settings,
    instance: dg.DagsterInstance | None,
    *,
    tell: Callable[[str], None],
    publishing: bool = False,
) -> Iterator[float]:
    """The turn a CLI run takes before it starts, by backend; yields the seconds waited."""
    if settings.warehouse_backend != "iceberg":
        with writer_turn(settings.duckdb_path, instance, tell=tell) as waited:
            yield waited
        return
    folder = Path(settings.data_dir)
    if publishing:
        with slot_turn(folder / "publisher", 1, tell=tell, what="the snapshot's publisher") as w:
            yield w
    else:
        with slot_turn(
            folder / "iceberg-writer", settings.iceberg_writers, tell=tell, what="an Iceberg writer"
        ) as waited:
            yield waited


@contextmanager
def slot_turn(base: Path, slots: int, *, tell: Callable[[str], None], what: str) -> Iterator[float]:
    """Hold one of `slots` lock files `<base>-<n>.lock` for the block (0 slots: no limit).

    Like the writer's lock, the kernel frees a dead process's slot; the wait sleeps and
    stops at once on SIGINT or SIGTERM.
    """
    if slots <= 0:
        yield 0.0
        return
    locks = [FileLock(f"{base}-{number}.lock") for number in range(slots)]
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WarehouseError(f"cannot create {base.parent}: {exc.strerror or exc}") from exc
    started = time.monotonic()
    told_at: float | None = None
    while True:
        for lock in locks:
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue
            except OSError as exc:
                raise WarehouseError(
                    f"cannot take the lock {lock.lock_file}: {exc.strerror or exc}"
                ) from exc
            try:
                yield time.monotonic() - started
            finally:
                lock.release()
            return
        now = time.monotonic()
        if told_at is None or now - told_at >= REMIND_SECONDS:
            waited = f" ({now - started:.0f}s so far)" if told_at is not None else ""
            held = "another process" if slots == 1 else f"{slots} other processes"
            tell(f"waiting for {what}, held by {held}{waited}")
            told_at = now
        time.sleep(POLL_SECONDS)
