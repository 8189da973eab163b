"""Rows between a DuckDB connection and the Iceberg tables, through Arrow or Parquet.

The lineage's SQL runs on DuckDB either way: a partition is written from a scratch DuckDB
database into Iceberg, and read back from Iceberg's Parquet files into one, so the writer's
duplicate search, reconciliation and the checks are written once for both backends.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import duckdb

from event_platform.store.iceberg.tables import TABLES, loaded_expression, stored_expression

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.table import Table

# A replace that loses a race on the same partition (`ValidationException`) is redone on the
# reloaded table this many times; conflicts on other partitions pyiceberg retries itself.
REDO_ATTEMPTS = 10


def _local_path(uri: str) -> str | None:
    if uri.startswith("file://"):
        return uri.removeprefix("file://")
    return uri if uri.startswith("/") else None


def insert_from_iceberg(
    con: duckdb.DuckDBPyConnection,
    table: Table,
    name: str,
    row_filter: BooleanExpression,
    *,
    where: str = "",
    params: dict[str, object] | None = None,
    target: str | None = None,
    columns: tuple[str, ...] | None = None,
) -> None:
    """Insert the rows of Iceberg table `name` matching `row_filter` (and the SQL `where`) into
    `main.<target or name>` of a DuckDB connection, converted back to DuckDB's types.

    Local Parquet files are read by DuckDB directly (streamed, spilled under its memory cap);
    pyiceberg writes no delete files, so a data file holds exactly its rows. Anything else
    (remote files, delete files) goes through pyiceberg's own reader.
    """
    spec = TABLES[name].spec
    tasks = list(table.scan(row_filter=row_filter).plan_files())
    if not tasks:
        return
    paths = [_local_path(task.file.file_path) for task in tasks]
    loaded = ", ".join(loaded_expression(column) for column in spec.columns)
    names = ", ".join(columns or spec.column_names)
    # `where` filters the converted values (an unsigned `hash_key`, not the stored bits).
    insert = (
        f"INSERT INTO main.{target or name} ({names}) SELECT {names} "
        f"FROM (SELECT {loaded} FROM {{source}}) {where}"
    )
    if all(paths) and not any(task.delete_files for task in tasks):
        source = "read_parquet($iceberg_files, union_by_name = true)"
        con.execute(insert.format(source=source), {**(params or {}), "iceberg_files": paths})
    else:
        scanned = table.scan(row_filter=row_filter).to_arrow()  # noqa: F841 - read by the SQL
        con.execute(insert.format(source="scanned"), params or {})


def partition_arrow(con: duckdb.DuckDBPyConnection, table: Table, name: str, select: str, params):
    """The rows `select` yields (the spec's columns), as Arrow in the Iceberg table's schema."""
    spec = TABLES[name].spec
    columns = ", ".join(stored_expression(column) for column in spec.columns)
    arrow = con.sql(f"SELECT {columns} FROM ({select})", params=params).to_arrow_table()
    return arrow.cast(table.schema().as_arrow())


def replace_partition(
    catalog: Catalog,
    name: str,
    source_file: str,
    rows: Callable[[Table], object],
    *,
    log: Callable[[str], None] | None = None,
    properties: dict[str, str] | None = None,
) -> int | None:
    """Replace `source_file`'s rows of `name` in one commit; returns the new snapshot id.

    A concurrent replace of the same partition makes pyiceberg raise `ValidationException`,
    which it does not retry: reload the table and redo, so the last commit wins whole.
    """
    from pyiceberg.exceptions import CommitFailedException, ValidationException
    from pyiceberg.expressions import EqualTo

    for attempt in range(1, REDO_ATTEMPTS + 1):
        table = catalog.load_table(TABLES[name].identifier)
        try:
            with warnings.catch_warnings():
                # A partition written for the first time has nothing to delete: not news.
                warnings.filterwarnings("ignore", "Delete operation did not match any records")
                table.overwrite(
                    rows(table),
                    overwrite_filter=EqualTo("source_file", source_file),
                    snapshot_properties=properties or {},
                )
        except (ValidationException, CommitFailedException) as exc:
            if attempt == REDO_ATTEMPTS:
                raise
            if log:
                log(
                    f"{name}/{source_file}: concurrent commit ({exc}); reloading, attempt {attempt}"
                )
            time.sleep(0.05 * attempt)
            continue
        snapshot = table.current_snapshot()
        return snapshot.snapshot_id if snapshot else None
    return None


def append_rows(catalog: Catalog, name: str, rows: Callable[[Table], object]) -> None:
    """Append rows (a report), redoing on a lost race as `replace_partition` does."""
    from pyiceberg.exceptions import CommitFailedException, ValidationException

    for attempt in range(1, REDO_ATTEMPTS + 1):
        table = catalog.load_table(TABLES[name].identifier)
        try:
            table.append(rows(table))
            return
        except (ValidationException, CommitFailedException):
            if attempt == REDO_ATTEMPTS:
                raise
            time.sleep(0.05 * attempt)
