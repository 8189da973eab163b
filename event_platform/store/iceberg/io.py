"""Rows between a DuckDB connection and the Iceberg tables, through Arrow or Parquet.

The lineage's SQL runs on DuckDB either way: a partition is written from a scratch DuckDB
database into Iceberg, and read back from Iceberg's Parquet files into one, so the writer's
duplicate search, reconciliation and the checks are written once for both backends.
"""

from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from typing import TYPE_CHECKING

import duckdb

from event_platform.store.iceberg.tables import TABLES, loaded_expression, stored_expression

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.catalog import Catalog
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.table import Table

# A replace that loses a race on the same partition (`ValidationException`) is redone on the
# reloaded table this many times; conflicts on other partitions pyiceberg retries itself.
REDO_ATTEMPTS = 10
# A partition is written to Iceberg in Arrow tables of about this size, one at a time.
BATCH_BYTES = 32 * 1024 * 1024
_READ_ROWS = 65_536


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
    one_thread: bool = False,
) -> None:
    """Insert the rows of Iceberg table `name` matching `row_filter` (and the SQL `where`) into
    `main.<target or name>` of a DuckDB connection, converted back to DuckDB's types.

    Local Parquet files are read by DuckDB directly (streamed, spilled under its memory cap);
    pyiceberg writes no delete files, so a data file holds exactly its rows. Anything else
    (remote files, delete files) goes through pyiceberg's own reader.

    `one_thread`: for a join beside the scan, where each thread would decode a row group of
    its own next to the join's table; a small memory cap holds one.
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
    [(threads,)] = con.execute("SELECT current_setting('threads')").fetchall()
    if one_thread:
        con.execute("SET threads = 1")
    try:
        if all(paths) and not any(task.delete_files for task in tasks):
            source = "read_parquet($iceberg_files, union_by_name = true)"
            con.execute(insert.format(source=source), {**(params or {}), "iceberg_files": paths})
        else:
            scanned = table.scan(row_filter=row_filter).to_arrow()  # noqa: F841 - read by the SQL
            con.execute(insert.format(source="scanned"), params or {})
    except BaseException:
        if one_thread:
            # Inside a transaction the failure aborted it and DuckDB refuses the SET: the
            # caller's error is the one to see (the writer's scratch is discarded anyway).
            with suppress(duckdb.Error):
                con.execute(f"SET threads = {int(threads)}")
        raise
    if one_thread:
        con.execute(f"SET threads = {int(threads)}")


def partition_batches(
    con: duckdb.DuckDBPyConnection, table: Table, name: str, select: str, params
) -> Iterator[pa.Table]:
    """The rows `select` yields (the spec's columns) in the Iceberg table's Arrow schema, as
    tables of about `BATCH_BYTES` each: a partition of any size is written with one batch in
    memory, while DuckDB spills the rest under its cap."""
    import pyarrow as pa

    spec = TABLES[name].spec
    columns = ", ".join(stored_expression(column) for column in spec.columns)
    schema = table.schema().as_arrow()
    reader = con.sql(f"SELECT {columns} FROM ({select})", params=params).to_arrow_reader(_READ_ROWS)
    pending: list[pa.RecordBatch] = []
    size = 0
    for batch in reader:
        pending.append(batch)
        size += batch.nbytes
        if size >= BATCH_BYTES:
            yield pa.Table.from_batches(pending).cast(schema)
            pending, size = [], 0
    if pending:
        yield pa.Table.from_batches(pending).cast(schema)


def partition_arrow(con: duckdb.DuckDBPyConnection, table: Table, name: str, select: str, params):
    """All the rows `select` yields, as one Arrow table (for a few rows: a report)."""
    import pyarrow as pa

    batches = list(partition_batches(con, table, name, select, params))
    if not batches:
        return table.schema().as_arrow().empty_table()
    return pa.concat_tables(batches)


def _write_partition(
    table: Table,
    source_file: str,
    batches: Iterable[pa.Table],
    properties: dict[str, str],
) -> None:
    """Delete `source_file`'s rows and append `batches`, as one transaction: one catalog commit.

    `Table.overwrite` would hold the whole partition as one Arrow table, and pyiceberg streams
    only into unpartitioned tables, so the data files are written batch by batch through the
    function `overwrite` itself uses, with one counter so that their names stay distinct. That
    function is private to pyiceberg, which is why the `iceberg` extra pins a minor release.
    """
    from pyiceberg.expressions import EqualTo
    from pyiceberg.io.pyarrow import _check_pyarrow_schema_compatible, _dataframe_to_data_files

    with table.transaction() as tx:
        with warnings.catch_warnings():
            # A partition written for the first time has nothing to delete: not news.
            warnings.filterwarnings("ignore", "Delete operation did not match any records")
            tx.delete(EqualTo("source_file", source_file), snapshot_properties=properties)
        with tx.update_snapshot(snapshot_properties=properties).fast_append() as append:
            counter = itertools.count(0)
            for batch in batches:
                metadata = tx.table_metadata
                _check_pyarrow_schema_compatible(
                    metadata.schema(),
                    provided_schema=batch.schema,
                    format_version=metadata.format_version,
                )
                for data_file in _dataframe_to_data_files(
                    table_metadata=metadata,
                    df=batch,
                    io=table.io,
                    write_uuid=append.commit_uuid,
                    counter=counter,
                ):
                    append.append_data_file(data_file)


def replace_partition(
    catalog: Catalog,
    name: str,
    source_file: str,
    batches: Callable[[Table], Iterable[pa.Table]],
    *,
    log: Callable[[str], None] | None = None,
    properties: dict[str, str] | None = None,
) -> int | None:
    """Replace `source_file`'s rows of `name` in one commit; returns the new snapshot id.

    A concurrent replace of the same partition makes pyiceberg raise `ValidationException`,
    which it does not retry: reload the table and redo, so the last commit wins whole. The
    files a lost attempt wrote are orphans, which maintenance removes.
    """
    from pyiceberg.exceptions import CommitFailedException, ValidationException

    for attempt in range(1, REDO_ATTEMPTS + 1):
        table = catalog.load_table(TABLES[name].identifier)
        try:
            _write_partition(table, source_file, batches(table), properties or {})
        except (ValidationException, CommitFailedException) as exc:
            if attempt == REDO_ATTEMPTS:
                raise
            if log:
                log(
                    f"{name}/{source_file}: concurrent commit ({exc}); reloading, attempt {attempt}"
                )
            time.sleep(0.05 * attempt)
            continue
        # The committed transaction updated `table`: its snapshot, not a later writer's.
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
