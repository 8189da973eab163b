"""Resources: the warehouse connection and the platform settings, both built from `Settings`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from event_platform.settings import (
    DEFAULT_RECONCILE_MODE,
    DEFAULT_RECONCILE_SAMPLE_LINES,
    Settings,
)
from event_platform.store.connection import LOCK_WAIT_SECONDS, WarehouseError, cause_line, connect


class PlatformResource(dg.ConfigurableResource):
    """Where files land and the thresholds checks use; defaults come from the environment."""

    data_dir: str
    allowed_event_types: list[int]
    rejection_warn_rate: float
    rejection_error_rate: float
    chunk_bytes: int
    freshness_hours: float
    duckdb_memory_limit: str = "256MB"
    max_line_bytes: int = 1024 * 1024
    reconcile_mode: str = DEFAULT_RECONCILE_MODE
    reconcile_sample_lines: int = DEFAULT_RECONCILE_SAMPLE_LINES

    @classmethod
    def from_settings(cls, settings: Settings) -> PlatformResource:
        return cls(
            data_dir=str(settings.data_dir),
            allowed_event_types=sorted(settings.allowed_event_types),
            rejection_warn_rate=settings.rejection_warn_rate,
            rejection_error_rate=settings.rejection_error_rate,
            chunk_bytes=settings.chunk_bytes,
            freshness_hours=settings.freshness_hours,
            duckdb_memory_limit=settings.duckdb_memory_limit,
            max_line_bytes=settings.max_line_bytes,
            reconcile_mode=settings.reconcile_mode,
            reconcile_sample_lines=settings.reconcile_sample_lines,
        )

    @property
    def landing_dir(self) -> Path:
        return Path(self.data_dir) / "landing"

    @property
    def published_dir(self) -> Path:
        return Path(self.data_dir) / "published"

    @property
    def event_types(self) -> frozenset[int]:
        return frozenset(self.allowed_event_types)

    def landed_file(self, partition_key: str) -> Path:
        """The file behind a partition, or a clear failure when it is gone."""
        path = self.landing_dir / partition_key
        if not path.is_file():
            raise dg.Failure(
                description=f"landed file {partition_key!r} is missing from {self.landing_dir}",
                allow_retries=False,
            )
        return path


class WarehouseResource(DuckDBResource):
    """DuckDB's resource, opened the platform's way (`store.connection.connect`).

    `DuckDBResource` retries every I/O error ten times, so a corrupt or read-only warehouse
    failed only after minutes while holding the writer; here a lock held by another process is
    waited for (and said so), anything else fails at once.
    """

    lock_wait_seconds: float = LOCK_WAIT_SECONDS

    @contextmanager
    def get_connection(
        self, on_wait: Callable[[str], None] | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        memory_limit = self.connection_config.get("memory_limit", "256MB")
        with connect(
            self.database,
            memory_limit=memory_limit,
            wait_seconds=self.lock_wait_seconds,
            on_wait=on_wait,
        ) as con:
            yield con


@contextmanager
def warehouse(
    resource: DuckDBResource, log: Callable[[str], None] | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection with every table present, whose failures say what to do.

    A failure of the warehouse (out of memory, a full disk, a read-only or corrupt file) becomes
    a `dg.Failure` with one line naming the cause and the file; by then the step's open
    transaction has been rolled back. DuckDB's out-of-memory advice (`SET memory_limit`) is
    replaced by the setting a user of this platform changes.
    """
    try:
        if isinstance(resource, WarehouseResource):
            opened = resource.get_connection(on_wait=log)
        else:
            opened = resource.get_connection()
        with opened as con:
            yield con
    except duckdb.OutOfMemoryException as exc:
        limit = (resource.connection_config or {}).get("memory_limit", "DuckDB's default")
        raise dg.Failure(
            description=(
                f"DuckDB ran out of memory under its {limit} cap; what this step was "
                "writing was rolled back. Raise EVENT_PLATFORM_DUCKDB_MEMORY_LIMIT and run "
                f"the partition again. DuckDB said: {cause_line(exc)}"
            ),
            allow_retries=False,
        ) from exc
    except WarehouseError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
    except duckdb.Error as exc:
        raise dg.Failure(
            description=(
                f"the warehouse {resource.database} failed: {cause_line(exc)}; what this step "
                "was writing was rolled back"
            ),
            allow_retries=False,
        ) from exc
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise dg.Failure(
            description=f"{exc.strerror or exc}{where}; what this step was writing was rolled back",
            allow_retries=False,
        ) from exc


def build_resources(settings: Settings) -> dict[str, object]:
    return {
        "duckdb": WarehouseResource(
            database=str(settings.duckdb_path),
            connection_config={"memory_limit": settings.duckdb_memory_limit},
        ),
        "platform": PlatformResource.from_settings(settings),
    }
