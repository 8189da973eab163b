"""Resources: the warehouse connection and the platform settings, both built from `Settings`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from event_platform.config import Settings
from event_platform.store.schema import create_tables


class PlatformResource(dg.ConfigurableResource):
    """Where files land and the thresholds checks use; defaults come from the environment."""

    data_dir: str
    allowed_event_types: list[int]
    rejection_warn_rate: float
    rejection_error_rate: float
    chunk_bytes: int
    freshness_hours: float

    @classmethod
    def from_settings(cls, settings: Settings) -> PlatformResource:
        return cls(
            data_dir=str(settings.data_dir),
            allowed_event_types=sorted(settings.allowed_event_types),
            rejection_warn_rate=settings.rejection_warn_rate,
            rejection_error_rate=settings.rejection_error_rate,
            chunk_bytes=settings.chunk_bytes,
            freshness_hours=settings.freshness_hours,
        )

    @property
    def landing_dir(self) -> Path:
        return Path(self.data_dir) / "landing"

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


@contextmanager
def warehouse(resource: DuckDBResource) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection with every table present.

    DuckDB's out-of-memory error becomes a failure that names the setting to raise: its own
    message suggests `SET memory_limit`, which a user of this platform sets through the
    environment, and the step's open transaction has been rolled back by then.
    """
    Path(resource.database).parent.mkdir(parents=True, exist_ok=True)
    with resource.get_connection() as con:
        try:
            create_tables(con)
            yield con
        except duckdb.OutOfMemoryException as exc:
            limit = (resource.connection_config or {}).get("memory_limit", "DuckDB's default")
            raise dg.Failure(
                description=(
                    f"DuckDB ran out of memory under its {limit} cap; what this step was "
                    "writing was rolled back. Raise EVENT_PLATFORM_DUCKDB_MEMORY_LIMIT and run "
                    f"the partition again. DuckDB said: {str(exc).splitlines()[0]}"
                ),
                allow_retries=False,
            ) from exc


def build_resources(settings: Settings) -> dict[str, object]:
    return {
        "duckdb": DuckDBResource(
            database=str(settings.duckdb_path),
            connection_config={"memory_limit": settings.duckdb_memory_limit},
        ),
        "platform": PlatformResource.from_settings(settings),
    }
