"""Fixtures for the Iceberg backend: a PostgreSQL catalog database per test, created and
dropped here, a temporary warehouse folder, and `backend`, which runs a test of the lineage
once on each warehouse backend.

Skipped, with the reason, when pyiceberg (the `iceberg` extra) is not installed or no
PostgreSQL answers at EVENT_PLATFORM_TEST_POSTGRES (default 127.0.0.1:5432, user postgres).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

POSTGRES = os.environ.get("EVENT_PLATFORM_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


def iceberg_missing() -> str | None:
    """Why the Iceberg backend cannot be tested here, or None."""
    try:
        import psycopg2
        import pyiceberg  # noqa: F401
    except ImportError as exc:
        return f"the iceberg extra is not installed ({exc.name}): pip install -e '.[iceberg]'"
    try:
        import psycopg2

        psycopg2.connect(f"{POSTGRES}/postgres", connect_timeout=3).close()
    except Exception as exc:
        return f"no PostgreSQL for the Iceberg catalog at {POSTGRES}: {exc}".strip()
    return None


@pytest.fixture
def catalog_uri() -> Iterator[str]:
    """A fresh PostgreSQL database for one test's catalog, dropped afterwards."""
    reason = iceberg_missing()
    if reason:
        pytest.skip(reason)
    import psycopg2

    name = f"ep_iceberg_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(f"{POSTGRES}/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES.replace('postgresql://', 'postgresql+psycopg2://')}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def iceberg(catalog_uri: str, tmp_path: Path):
    from event_platform.store.iceberg.warehouse import IcebergWarehouse

    return IcebergWarehouse(catalog_uri, str(tmp_path / "iceberg"), scratch_dir=str(tmp_path))


@dataclass
class Backend:
    """One warehouse backend as a test of the lineage sees it."""

    name: str
    # What `ingest_file` is given: the DuckDB connection, or the Iceberg warehouse.
    store: object

    @property
    def warehouse(self):
        """The store behind the backend seam (`event_platform.store.backend.Warehouse`)."""
        from event_platform.store.backend import as_warehouse

        return as_warehouse(self.store)

    @contextmanager
    def read(self, source_file: str):
        """A DuckDB connection holding the partition as the reconciliation and checks see it."""
        if self.name == "duckdb":
            yield self.store
        else:
            with self.store.partition(source_file) as con:
                yield con

    def rows(self, source_file: str, sql: str, params: dict | None = None) -> list[tuple]:
        """`sql`'s rows, read where the partition's reads see it (`read`)."""
        with self.read(source_file) as con:
            return con.execute(sql, params or {}).fetchall()

    @contextmanager
    def whole(self):
        """A DuckDB connection holding every file's rows (on Iceberg, publication's copy)."""
        if self.name == "duckdb":
            yield self.store
            return
        import duckdb

        with (
            self.store.publication_source() as path,
            duckdb.connect(str(path), read_only=True) as con,
        ):
            yield con

    def record(self, con, report) -> None:
        self.warehouse.record_report(con, report)

    def corrupt(self, source_file: str, *statements: str, params: dict | None = None) -> None:
        """Run SQL that alters the stored partition, in the store itself: on Iceberg the
        partition is read into DuckDB, altered, and committed back as a new snapshot."""
        if self.name == "duckdb":
            for statement in statements:
                self.store.execute(statement, params if "$" in statement else {})
            return
        from event_platform.store.iceberg.io import partition_batches, replace_partition

        with self.store.partition(source_file) as con:
            for statement in statements:
                con.execute(statement, params if "$" in statement else {})
            for name in ("events", "rejected_events"):
                select = f"SELECT * FROM main.{name} WHERE source_file = $f"
                replace_partition(
                    self.store.catalog,
                    name,
                    source_file,
                    lambda table, n=name, s=select, c=con: partition_batches(
                        c, table, n, s, {"f": source_file}
                    ),
                )


@pytest.fixture(params=["duckdb", "iceberg"])
def backend_name(request) -> str:
    """Runs a test once on each warehouse backend; Iceberg is skipped, with the reason, where
    pyiceberg or PostgreSQL is missing (`catalog_uri`)."""
    return request.param


@pytest.fixture
def open_backend(backend_name: str, tmp_path: Path, request):
    """Opens the test's warehouse on its backend: a DuckDB file `name` under `tmp_path`, or the
    test's one Iceberg catalog and folder (whatever `name`), with DuckDB's memory cap `limit`."""
    from event_platform.settings import DEFAULT_DUCKDB_MEMORY_LIMIT

    @contextmanager
    def opened(memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT, name: str = "warehouse"):
        if backend_name == "duckdb":
            from event_platform.store.connection import connect

            with connect(tmp_path / f"{name}.duckdb", memory_limit=memory_limit) as con:
                yield Backend("duckdb", con)
            return
        from event_platform.store.iceberg.warehouse import IcebergWarehouse

        catalog_uri = request.getfixturevalue("catalog_uri")
        yield Backend(
            "iceberg",
            IcebergWarehouse(
                catalog_uri,
                str(tmp_path / "iceberg"),
                memory_limit=memory_limit,
                scratch_dir=str(tmp_path),
            ),
        )

    return opened


@pytest.fixture
def backend(open_backend) -> Iterator[Backend]:
    with open_backend() as opened:
        yield opened


@pytest.fixture
def backend_settings(backend_name: str, settings, request):
    """The test's settings (`settings`), with the warehouse on each backend in turn."""
    import dataclasses

    if backend_name == "duckdb":
        return settings
    return dataclasses.replace(
        settings,
        warehouse_backend="iceberg",
        iceberg_catalog_uri=request.getfixturevalue("catalog_uri"),
        iceberg_location=str(settings.data_dir / "iceberg"),
    )


@contextmanager
def settings_backend(settings) -> Iterator[Backend]:
    """The warehouse the settings name, as `Backend`, for a test to read or corrupt."""
    if settings.warehouse_backend == "duckdb":
        from event_platform.store.connection import connect

        with connect(settings.duckdb_path) as con:
            yield Backend("duckdb", con)
        return
    from event_platform.defs.resources import build_resources

    yield Backend("iceberg", build_resources(settings)["duckdb"].iceberg_warehouse())
