"""The one way to open a DuckDB file of the platform: wait while another process writes it,
fail at once on anything else.

DuckDB lets one process hold a file for writing and refuses every other process meanwhile, so a
refused lock is a wait, told to the caller with the holder's pid. Every other failure to open
(a corrupt or truncated file, a read-only file system, a full disk, a missing folder) is
permanent: retrying it only holds the writer longer, so it fails at once with one line that
names the file and the cause. `connect` opens the warehouse (migrated when writable, its
version checked when read-only), `attach` attaches it to another connection (publication),
`open_database` opens any of the platform's files the same way (the API's snapshots).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from event_platform.settings import DEFAULT_DUCKDB_MEMORY_LIMIT
from event_platform.store.errors import SchemaVersionError, StoreBusyError, WarehouseError
from event_platform.store.migrations import check_readable
from event_platform.store.schema import SPECS, create_tables

__all__ = [
    "LOCK_WAIT_SECONDS",
    "SchemaVersionError",
    "StoreBusyError",
    "WarehouseError",
    "attach",
    "cause_line",
    "connect",
    "is_lock_conflict",
    "open_database",
]

LOCK_WAIT_SECONDS = 600.0
# How often a waiting caller is told again whom it waits for.
LOCK_REMIND_SECONDS = 30.0
_HOLDER_PID = re.compile(r"\(PID (\d+)\)")


def is_lock_conflict(error: BaseException) -> bool:
    return isinstance(error, duckdb.IOException) and "lock" in str(error).lower()


def cause_line(error: BaseException) -> str:
    """DuckDB's message without its error-class prefix and advice, on one line."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return re.sub(r"^[A-Za-z ]+Error: ", "", text)


# Python exceptions that stand for an interrupt (a signal). When one is raised in Python code
# that DuckDB called back, e.g. reading the Arrow schema of a replacement scan's object, DuckDB
# replaces it with an error of its own whose message names it.
_INTERRUPT_NAMES = re.compile(r"\b(?:DagsterExecutionInterruptedError|KeyboardInterrupt)\b")


def names_an_interrupt(message: str) -> bool:
    """Whether a DuckDB error's message says it wraps an interrupt rather than a failure."""
    return _INTERRUPT_NAMES.search(message) is not None


def _waiting_for_lock(
    what: str,
    action: Callable[[], duckdb.DuckDBPyConnection | None],
    *,
    wait_seconds: float,
    on_wait: Callable[[str], None] | None,
) -> duckdb.DuckDBPyConnection | None:
    """Run `action` (an open or an ATTACH) until no other process holds the file's lock.

    A lock is waited for, up to `wait_seconds`, and `on_wait` is told whom for; any other
    failure is permanent and raised at once as a `WarehouseError` naming `what`.
    """
    started = time.monotonic()
    told_at: float | None = None
    delay = 0.05
    while True:
        try:
            return action()
        except duckdb.Error as exc:
            if not is_lock_conflict(exc):
                raise WarehouseError(f"cannot open {what}: {cause_line(exc)}") from exc
            waited = time.monotonic() - started
            holder = _HOLDER_PID.search(str(exc))
            who = f"process {holder.group(1)}" if holder else "another process"
            if waited >= wait_seconds:
                raise StoreBusyError(f"{what} stayed locked by {who} for {waited:.0f}s") from exc
            if on_wait and (told_at is None or time.monotonic() - told_at >= LOCK_REMIND_SECONDS):
                on_wait(f"waiting for {what}, locked by {who} ({waited:.0f}s so far)")
                told_at = time.monotonic()
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def open_database(
    path: Path | str,
    *,
    read_only: bool,
    memory_limit: str | None = DEFAULT_DUCKDB_MEMORY_LIMIT,
    threads: int | None = None,
    config: dict[str, str] | None = None,
    wait_seconds: float = LOCK_WAIT_SECONDS,
    on_wait: Callable[[str], None] | None = None,
    what: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB file (or `:memory:`) of the platform; the caller closes it.

    Nothing about its tables is checked or created: `connect` does that for the warehouse.
    `memory_limit=None` leaves DuckDB's own cap (the API's snapshot readers, whose queries
    are small); `threads` caps the worker threads of a connection that serves requests.
    """
    settings: dict[str, str] = dict(config or {})
    if memory_limit is not None:
        settings["memory_limit"] = memory_limit
    if threads is not None:
        settings["threads"] = str(threads)

    def opened() -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(str(path), read_only=read_only, config=settings)
        # No progress bar: DuckDB would draw one into the CLI's output and the run's log.
        con.execute("SET enable_progress_bar = false")
        return con

    con = _waiting_for_lock(
        what or f"the warehouse {path}", opened, wait_seconds=wait_seconds, on_wait=on_wait
    )
    assert con is not None
    return con


def attach(
    con: duckdb.DuckDBPyConnection,
    path: Path | str,
    alias: str,
    *,
    read_only: bool,
    wait_seconds: float = LOCK_WAIT_SECONDS,
    on_wait: Callable[[str], None] | None = None,
) -> int | None:
    """Attach the warehouse at `path` as `alias`, waiting for its lock as `connect` does.

    Attached, it is never migrated (that would hold the lock of a reader's copy longer): a
    warehouse of another schema version is detached and refused with what to do. Returns its
    version (None: it has no tables). A missing file is attached as an empty in-memory
    warehouse, so a reader of a warehouse never written sees empty tables.
    """
    path = Path(path)
    if read_only and not path.exists():
        con.execute(f"ATTACH ':memory:' AS {alias}")
        for spec in SPECS.values():
            con.execute(spec.create_sql(f"{alias}.main"))
        return None
    options = " (READ_ONLY)" if read_only else ""

    def attached() -> None:
        con.execute(f"ATTACH ? AS {alias}{options}", [str(path)])

    _waiting_for_lock(f"the warehouse {path}", attached, wait_seconds=wait_seconds, on_wait=on_wait)
    try:
        return check_readable(con, str(path), alias)
    except BaseException:
        con.execute(f"DETACH {alias}")
        raise


@contextmanager
def connect(
    path: Path | str,
    *,
    read_only: bool = False,
    wait_seconds: float = LOCK_WAIT_SECONDS,
    memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse and always close it: writable, it is created or migrated to this
    release's schema version; read-only, a warehouse of another version is refused.

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
        con = open_database(
            path,
            read_only=read_only,
            memory_limit=memory_limit,
            wait_seconds=wait_seconds,
            on_wait=on_wait,
        )
        try:
            if read_only:
                # A read-only open cannot migrate: refuse what this release cannot read.
                check_readable(con, str(path))
            else:
                create_tables(con, str(path))
        except SchemaVersionError:
            con.close()
            raise
        except duckdb.OutOfMemoryException:
            con.close()
            raise
        except duckdb.Error as exc:
            con.close()
            raise WarehouseError(f"cannot prepare the warehouse {path}: {cause_line(exc)}") from exc
    try:
        yield con
    finally:
        con.close()
