"""The one connection helper for the warehouse.

DuckDB lets one process write a file at a time and blocks other processes while it does, so
write connections are opened late, kept short and retried briefly on the lock; Dagster's
`duckdb_writer` pool serialises the writers we launch ourselves.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from event_platform.config import DEFAULT_DUCKDB_MEMORY_LIMIT
from event_platform.store.schema import create_tables

LOCK_RETRY_SECONDS = 30.0


class StoreBusyError(RuntimeError):
    """The warehouse stayed locked by another process for longer than we wait."""


def _open(
    path: Path, read_only: bool, wait_seconds: float, memory_limit: str
) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    while True:
        try:
            return duckdb.connect(
                str(path), read_only=read_only, config={"memory_limit": memory_limit}
            )
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                if "lock" in str(exc).lower():
                    raise StoreBusyError(
                        f"{path} is locked by another process for over {wait_seconds:.0f}s"
                    ) from exc
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


@contextmanager
def connect(
    path: Path | str,
    *,
    read_only: bool = False,
    wait_seconds: float = LOCK_RETRY_SECONDS,
    memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse (creating it and its tables when writable) and always close it."""
    path = Path(path)
    if read_only and not path.exists():
        # A reader of a warehouse that was never written sees empty tables, not an error.
        con = duckdb.connect(":memory:")
        create_tables(con)
    else:
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        con = _open(path, read_only, wait_seconds, memory_limit)
        if not read_only:
            create_tables(con)
    try:
        yield con
    finally:
        con.close()
