"""Opening the warehouse: wait while another process writes it, fail at once on anything else.

DuckDB lets one process hold a file for writing and refuses every other process meanwhile, so a
refused lock is a wait, told to the caller with the holder's pid. Every other failure to open
(a corrupt or truncated file, a read-only file system, a full disk, a missing folder) is
permanent: retrying it only holds the writer longer, so it fails at once with one line that
names the file and the cause.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from event_platform.settings import DEFAULT_DUCKDB_MEMORY_LIMIT
from event_platform.store.schema import create_tables

LOCK_WAIT_SECONDS = 600.0
# How often a waiting caller is told again whom it waits for.
LOCK_REMIND_SECONDS = 30.0
_HOLDER_PID = re.compile(r"\(PID (\d+)\)")


class WarehouseError(RuntimeError):
    """The warehouse cannot be used; `str()` is one line naming the file and the cause."""


class StoreBusyError(WarehouseError):
    """The warehouse stayed locked by another process for longer than we wait."""


def is_lock_conflict(error: BaseException) -> bool:
    return isinstance(error, duckdb.IOException) and "lock" in str(error).lower()


def cause_line(error: BaseException) -> str:
    """DuckDB's message without its error-class prefix and advice, on one line."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return re.sub(r"^[A-Za-z ]+Error: ", "", text)


def _open(
    path: Path,
    *,
    read_only: bool,
    memory_limit: str,
    wait_seconds: float,
    on_wait: Callable[[str], None] | None,
) -> duckdb.DuckDBPyConnection:
    started = time.monotonic()
    told_at: float | None = None
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(
                str(path), read_only=read_only, config={"memory_limit": memory_limit}
            )
            # No progress bar: DuckDB would draw one into the CLI's output and the run's log.
            con.execute("SET enable_progress_bar = false")
            return con
        except duckdb.Error as exc:
            if not is_lock_conflict(exc):
                raise WarehouseError(
                    f"cannot open the warehouse {path}: {cause_line(exc)}"
                ) from exc
            waited = time.monotonic() - started
            holder = _HOLDER_PID.search(str(exc))
            who = f"process {holder.group(1)}" if holder else "another process"
            if waited >= wait_seconds:
                raise StoreBusyError(
                    f"the warehouse {path} stayed locked by {who} for {waited:.0f}s"
                ) from exc
            if on_wait and (told_at is None or time.monotonic() - told_at >= LOCK_REMIND_SECONDS):
                on_wait(f"waiting for the warehouse {path}, locked by {who} ({waited:.0f}s so far)")
                told_at = time.monotonic()
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


@contextmanager
def connect(
    path: Path | str,
    *,
    read_only: bool = False,
    wait_seconds: float = LOCK_WAIT_SECONDS,
    memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse (creating it and its tables when writable) and always close it.

    The one way to open it: the Dagster resource, the CLI, tests and benchmarks all come here.
    """
    path = Path(path)
    if read_only and not path.exists():
        # A reader of a warehouse that was never written sees empty tables, not an error.
        con = duckdb.connect(":memory:")
        create_tables(con)
    else:
        if not read_only:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise WarehouseError(
                    f"cannot create the warehouse folder {path.parent}: {exc.strerror}"
                ) from exc
        con = _open(
            path,
            read_only=read_only,
            memory_limit=memory_limit,
            wait_seconds=wait_seconds,
            on_wait=on_wait,
        )
        if not read_only:
            try:
                create_tables(con)
            except duckdb.OutOfMemoryException:
                con.close()
                raise
            except duckdb.Error as exc:
                con.close()
                raise WarehouseError(
                    f"cannot prepare the warehouse {path}: {cause_line(exc)}"
                ) from exc
    try:
        yield con
    finally:
        con.close()
