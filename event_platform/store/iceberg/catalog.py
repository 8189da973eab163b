"""The Iceberg catalog (pyiceberg's `SqlCatalog` on PostgreSQL) and the warehouse's tables in it."""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING

from event_platform.store.iceberg.tables import (
    NAMESPACE,
    TABLES,
    iceberg_schema,
    partition_spec,
)

if TYPE_CHECKING:
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.table import Table

# Any two concurrent commits to one table conflict and pyiceberg retries them (4 times by
# default); with several workers committing at once, 4 can run out, so it retries longer.
TABLE_PROPERTIES = {
    "commit.retry.num-retries": "30",
    "commit.retry.min-wait-ms": "50",
    "commit.retry.max-wait-ms": "2000",
    "format-version": "2",
    # Row groups of this many rows: DuckDB reads a Parquet column chunk whole, and one of a
    # million rejected lines would not fit a small memory cap.
    "write.parquet.row-group-limit": "32768",
}
# Set on tables created before a property was (format-version is fixed at creation).
_UPDATABLE = {key: value for key, value in TABLE_PROPERTIES.items() if key != "format-version"}


def warehouse_uri(location: str) -> str:
    """A local folder as the `file://` URI pyiceberg expects; `gs://...` and others unchanged."""
    if "://" in location:
        return location
    from pathlib import Path

    return Path(location).expanduser().resolve().as_uri()


def open_catalog(catalog_uri: str, location: str) -> SqlCatalog:
    """The catalog, with the namespace and every table present (created when missing)."""
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.exceptions import NamespaceAlreadyExistsError, TableAlreadyExistsError

    if "://" not in location:
        from pathlib import Path

        Path(location).expanduser().mkdir(parents=True, exist_ok=True)
    catalog = SqlCatalog("event_platform", uri=catalog_uri, warehouse=warehouse_uri(location))
    # Another worker may create it, or a table, between the check and the insert.
    with suppress(NamespaceAlreadyExistsError):
        catalog.create_namespace_if_not_exists(NAMESPACE)
    for table in TABLES.values():
        if catalog.table_exists(table.identifier):
            _update_properties(catalog.load_table(table.identifier))
            continue
        schema = iceberg_schema(table.spec)
        with suppress(TableAlreadyExistsError):
            catalog.create_table(
                table.identifier,
                schema=schema,
                partition_spec=partition_spec(table, schema),
                properties=TABLE_PROPERTIES,
            )
    return catalog


def _update_properties(table: Table) -> None:
    stale = {k: v for k, v in _UPDATABLE.items() if table.properties.get(k) != v}
    if stale:
        with table.transaction() as tx:
            tx.set_properties(stale)


def load(catalog: SqlCatalog, name: str) -> Table:
    return catalog.load_table(TABLES[name].identifier)
