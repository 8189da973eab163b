"""Read-only access to the current published snapshot, reopened when `current.duckdb` moves.

One read-only DuckDB connection per snapshot file is cached per process; each request gets its
own cursor (a DuckDB connection is not safe to share across threads, its cursors are). The link
is resolved on every request (one `realpath` syscall) so a new publication is served at once.
The previous connection is dropped, not closed: requests still holding its cursors finish on it,
and the file stays readable after the publisher deletes it.
Each snapshot's `TimeExtent` is read once when it is opened, for sizing page windows
(`event_platform.api.pages`); it is handed out with the cursor so the two always agree.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from event_platform.api.pages import TimeExtent
from event_platform.store.connection import WarehouseError, open_database

# What a client (503) or an operator (/health, /ready) is told to do; no paths in them.
HOW_TO_PUBLISH = "run `event-platform publish-snapshot` or materialise the published_events asset"
NO_SNAPSHOT = f"no snapshot has been published yet: {HOW_TO_PUBLISH}"
UNREADABLE_SNAPSHOT = f"the published snapshot cannot be read; publish a new one: {HOW_TO_PUBLISH}"
MOVING_SNAPSHOT = "the published snapshot was replaced repeatedly while opening it: retry"


class SnapshotUnavailableError(RuntimeError):
    """No snapshot has been published yet, or it cannot be opened.

    `detail` is safe to send to a client and says what to do about it.
    """

    def __init__(self, message: str, target: str | None, detail: str = UNREADABLE_SNAPSHOT) -> None:
        super().__init__(message)
        self.target = target
        self.detail = detail


# A publisher may swap the link several times while a request resolves and opens it (each
# swap prunes the snapshot before last); we follow the link as long as it keeps moving.
MAX_FOLLOWED_SWAPS = 16


class SnapshotReader:
    """Hands out cursors on the snapshot `link` currently points at."""

    def __init__(self, link: Path, *, threads: int = 1) -> None:
        self.link = Path(link)
        self.threads = threads
        self._lock = threading.Lock()
        self._target: str | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._extent: TimeExtent | None = None

    def _resolve(self) -> str:
        target = os.path.realpath(self.link)
        if not os.path.isfile(target):
            raise SnapshotUnavailableError(f"no snapshot at {self.link}", target, NO_SNAPSHOT)
        return target

    def published_name(self) -> str | None:
        """The file name the link points at now, if that file exists; nothing is opened."""
        target = os.path.realpath(self.link)
        return os.path.basename(target) if os.path.isfile(target) else None

    def _connection(self) -> tuple[duckdb.DuckDBPyConnection, TimeExtent | None]:
        target = self._resolve()
        with self._lock:
            if target != self._target or self._con is None:
                try:
                    # A snapshot is never written once published: no lock to wait for, and
                    # DuckDB's own memory cap, as its queries are small.
                    con = open_database(
                        target,
                        read_only=True,
                        memory_limit=None,
                        threads=self.threads,
                        wait_seconds=0,
                        what=f"snapshot {target}",
                    )
                except WarehouseError as exc:
                    raise SnapshotUnavailableError(
                        f"cannot open snapshot {target}", target, UNREADABLE_SNAPSHOT
                    ) from exc
                try:
                    extent: TimeExtent | None = TimeExtent.read(con)
                except duckdb.Error:
                    extent = None  # not a usable snapshot; requests report it themselves
                self._target, self._con, self._extent = target, con, extent
            return self._con.cursor(), self._extent

    @contextmanager
    def session(self) -> Iterator[tuple[duckdb.DuckDBPyConnection, TimeExtent | None]]:
        """A cursor for one request, closed afterwards, with its snapshot's time extent."""
        failed: str | None = None
        for _ in range(MAX_FOLLOWED_SWAPS):
            try:
                cur, extent = self._connection()
                break
            except SnapshotUnavailableError as error:
                # The same file failing twice is really unusable (or there is no snapshot);
                # a different one means the link moved on meanwhile: follow it.
                if error.target == failed:
                    raise
                failed = error.target
        else:
            raise SnapshotUnavailableError(
                f"{self.link} kept moving while opening it", failed, MOVING_SNAPSHOT
            )
        try:
            yield cur, extent
        finally:
            cur.close()

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor for one request, closed afterwards."""
        with self.session() as (cur, _):
            yield cur

    @property
    def target(self) -> str | None:
        """The snapshot file currently open (for /ready), if any."""
        return self._target
