"""Wait, visibly and interruptibly, for the warehouse writer before a CLI run starts.

DuckDB admits one writing process per file. Runs launched by the daemon queue for the
`duckdb_writer` pool (granularity `run`: a run holds it from start to end). A CLI run is not
queued, so the CLI takes its turn here first: a lock file beside the warehouse orders the CLI
processes (the kernel drops it when a process dies, so a killed CLI never keeps it), and runs
of the instance that hold the pool are waited out, after dead ones are failed
(`reap_dead_runs`). Dagster's own in-run wait for a pool spins a core and defers signals; this
one sleeps, says whom it waits for, and stops at once on SIGINT or SIGTERM.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from dagster._core.storage.dagster_run import ACTIVE_RUN_STATUSES, RunsFilter
from filelock import FileLock, Timeout

from event_platform.runs.reaper import reap_dead_runs
from event_platform.store.connection import WarehouseError

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
