"""Resources: how settings reach assets, checks and sensors.

`build_resources` turns the one `Settings` the definitions read into configurable resources
(the warehouse, the platform's folders and thresholds, the Pub/Sub source); no asset or sensor
reads the environment itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from event_platform.settings import (
    DEFAULT_DUCKDB_MEMORY_LIMIT,
    DEFAULT_WAREHOUSE_BACKEND,
    PubSubSettings,
    Settings,
)
from event_platform.store.backend import DuckDBWarehouse, Warehouse
from event_platform.store.connection import (
    LOCK_WAIT_SECONDS,
    WarehouseError,
    cause_line,
    connect,
    names_an_interrupt,
)

if TYPE_CHECKING:
    from event_platform.store.iceberg.warehouse import IcebergWarehouse


class PlatformResource(dg.ConfigurableResource):
    """Where files land and are published, and the thresholds the checks use."""

    # Derived by `Settings`, never here; they cross into Dagster config as strings.
    landing_folder: str
    published_folder: str
    allowed_event_types: list[int]
    rejection_warn_rate: float
    rejection_error_rate: float
    chunk_bytes: int
    freshness_hours: float
    duckdb_memory_limit: str
    max_line_bytes: int
    # How reconciliation runs unless a run's config says otherwise (`ReconciliationConfig`).
    reconcile_mode: str
    reconcile_sample_lines: int

    @classmethod
    def from_settings(cls, settings: Settings) -> PlatformResource:
        return cls(
            landing_folder=str(settings.landing_dir),
            published_folder=str(settings.published_dir),
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
        return Path(self.landing_folder)

    @property
    def published_dir(self) -> Path:
        return Path(self.published_folder)

    @property
    def event_types(self) -> frozenset[int]:
        return frozenset(self.allowed_event_types)

    @property
    def reading(self) -> dict[str, Any]:
        """How a file is read and validated, the same for ingestion and reconciliation."""
        return {
            "allowed_event_types": self.event_types,
            "chunk_bytes": self.chunk_bytes,
            "max_line_bytes": self.max_line_bytes,
            "memory_limit": self.duckdb_memory_limit,
        }

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
    # `duckdb`: the file at `database`; `iceberg`: the catalog and location below
    # (`event_platform.store.backend`).
    backend: str = DEFAULT_WAREHOUSE_BACKEND
    iceberg_catalog_uri: str | None = None
    iceberg_location: str | None = None

    def iceberg_warehouse(self) -> IcebergWarehouse:
        from event_platform.store.iceberg.warehouse import IcebergWarehouse

        if not (self.iceberg_catalog_uri and self.iceberg_location):
            raise WarehouseError("the Iceberg backend needs a catalog URI and a location")
        memory_limit = self.connection_config.get("memory_limit", DEFAULT_DUCKDB_MEMORY_LIMIT)
        return IcebergWarehouse(
            self.iceberg_catalog_uri, self.iceberg_location, memory_limit=memory_limit
        )

    @contextmanager
    def get_connection(
        self, on_wait: Callable[[str], None] | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        memory_limit = self.connection_config.get("memory_limit", DEFAULT_DUCKDB_MEMORY_LIMIT)
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
        if names_an_interrupt(str(exc)):
            # A signal that landed in Python code DuckDB was calling: still an interrupt, not a
            # warehouse failure, so the run reads as interrupted (and the CLI exits 130).
            raise dg.DagsterExecutionInterruptedError(cause_line(exc)) from exc
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


@contextmanager
def warehouse_store(
    resource: DuckDBResource, log: Callable[[str], None] | None = None
) -> Iterator[Warehouse]:
    """The configured backend: the DuckDB file through `warehouse` (its failures said the same
    way), or the Iceberg warehouse, which holds no connection between calls."""
    if _on_iceberg(resource):
        try:
            yield resource.iceberg_warehouse()
        except WarehouseError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from exc
        return
    with warehouse(resource, log) as con:
        yield DuckDBWarehouse(con, Path(resource.database))


@contextmanager
def publication_source(resource: DuckDBResource) -> Iterator[Path]:
    """The DuckDB file publication copies from: the warehouse itself, which publication attaches
    read-only on its own (no connection is held here), or Iceberg's tables read into one."""
    if _on_iceberg(resource):
        with resource.iceberg_warehouse().publication_source() as source:
            yield source
        return
    yield Path(resource.database)


def _on_iceberg(resource: DuckDBResource) -> bool:
    return isinstance(resource, WarehouseResource) and resource.backend == "iceberg"


class PubSubResource(dg.ConfigurableResource):
    """The Pub/Sub section of the settings, for the subscription's asset, check and sensor."""

    project: str
    topic: str | None
    subscription: str | None
    landing_dir: str
    state_dir: str
    batch_max_messages: int
    batch_max_seconds: float
    max_delivery_attempts: int
    dead_letter_topic: str | None
    ack_deadline_seconds: int
    sensor_drain_seconds: float
    max_message_age_seconds: float

    @classmethod
    def from_settings(cls, settings: PubSubSettings) -> PubSubResource:
        return cls(
            **{name: getattr(settings, name) for name in PUBSUB_FIELDS},
            landing_dir=str(settings.landing_dir),
            state_dir=str(settings.state_dir),
        )

    @property
    def settings(self) -> PubSubSettings:
        """Back to the plain section the consumer (`drain`) and the health verdict take."""
        return PubSubSettings(
            **{name: getattr(self, name) for name in PUBSUB_FIELDS},
            landing_dir=Path(self.landing_dir),
            state_dir=Path(self.state_dir),
        )


# Every Pub/Sub setting but the two folders, which cross as strings.
PUBSUB_FIELDS = tuple(
    name for name in PubSubSettings.__dataclass_fields__ if name not in ("landing_dir", "state_dir")
)


def build_resources(settings: Settings) -> dict[str, object]:
    """The lineage's resources, bound by the definitions and `event-platform ingest`.

    The Pub/Sub source binds its own `PubSubResource` (`defs.pubsub.pubsub_defs`).
    """
    return {
        "duckdb": WarehouseResource(
            database=str(settings.duckdb_path),
            connection_config={"memory_limit": settings.duckdb_memory_limit},
            backend=settings.warehouse_backend,
            iceberg_catalog_uri=settings.iceberg_catalog_uri,
            iceberg_location=settings.iceberg_location,
        ),
        "platform": PlatformResource.from_settings(settings),
    }
