"""The Iceberg warehouse: the backend seam's implementation on a PostgreSQL catalog.

Reads go through a scratch DuckDB database holding what one question needs (a partition and
what proves its duplicates; or, for publication, every table), so reconciliation, the checks
and publication run the DuckDB backend's SQL unchanged.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from event_platform.contract import StreamContract
from event_platform.reconcile.report import ReconciliationReport, record_report
from event_platform.settings import DEFAULT_DUCKDB_MEMORY_LIMIT
from event_platform.store.connection import open_database
from event_platform.store.iceberg.catalog import open_catalog
from event_platform.store.iceberg.io import append_rows, insert_from_iceberg, partition_arrow
from event_platform.store.iceberg.tables import TABLES, duckdb_columns
from event_platform.store.other_files import files_sharing_keys
from event_platform.store.schema import create_tables, hash_key_sql
from event_platform.store.tables import RECONCILIATION_REPORTS
from event_platform.store.writer import Reread

if TYPE_CHECKING:
    from pyiceberg.catalog.sql import SqlCatalog

    from event_platform.store.iceberg.writer import IcebergPartitionWriter

# The partition's tables, read whole for the partition's reads.
_PARTITION_TABLES = ("events", "rejected_events", "ingestions", "reconciliation_reports")
# Keys whose other holders a partition's reads need: its events' and its duplicates'.
_WANTED_KEYS = f"""
CREATE OR REPLACE TEMP TABLE wanted_keys AS
SELECT {hash_key_sql("event_hash")} AS hash_key, event_hash FROM main.events
WHERE source_file = $f
UNION
SELECT {hash_key_sql("event_hash")}, event_hash FROM main.rejected_events
WHERE source_file = $f AND event_hash IS NOT NULL
"""


class IcebergWarehouse:
    """Apache Iceberg tables in a PostgreSQL (`SqlCatalog`) catalog, data in `location`."""

    name = "iceberg"

    def __init__(
        self,
        catalog_uri: str,
        location: str,
        *,
        memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT,
        scratch_dir: str | None = None,
    ) -> None:
        self.catalog_uri = catalog_uri
        self.location = location
        self.memory_limit = memory_limit
        self.scratch_dir = scratch_dir

    @cached_property
    def catalog(self) -> SqlCatalog:
        return open_catalog(self.catalog_uri, self.location)

    def table(self, name: str):
        return self.catalog.load_table(TABLES[name].identifier)

    @contextmanager
    def scratch(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """An empty warehouse in a temporary DuckDB file, capped like the warehouse; removed
        afterwards."""
        folder = Path(tempfile.mkdtemp(prefix="event-platform-iceberg-", dir=self.scratch_dir))
        try:
            con = open_database(
                folder / "scratch.duckdb", read_only=False, memory_limit=self.memory_limit
            )
            try:
                create_tables(con, "a scratch warehouse")
                yield con
            finally:
                con.close()
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def partition_writer(
        self,
        contract: StreamContract,
        source_file: str,
        run_id: str,
        now: datetime,
        *,
        reread: Reread,
        log: Callable[[str], None] | None = None,
    ) -> IcebergPartitionWriter:
        from event_platform.store.iceberg.writer import IcebergPartitionWriter

        return IcebergPartitionWriter(
            self, contract, source_file, run_id, now, reread=reread, log=log
        )

    @contextmanager
    def partition(self, source_file: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection holding the partition's rows, its index entries, and the other files'
        index entries and events that share one of its hashes: what the reconciliation and the
        checks read, with the warehouse's table names."""
        from pyiceberg.expressions import AlwaysTrue, EqualTo, In

        mine = {"f": source_file}
        with self.scratch() as con:
            for name in _PARTITION_TABLES:
                insert_from_iceberg(
                    con, self.table(name), name, EqualTo("source_file", source_file)
                )
            con.execute(_WANTED_KEYS, mine)
            # The partition's own entries, whatever their keys (the uniqueness check compares
            # them with its events), then the other files' entries for the wanted keys.
            index = self.table("event_hash_keys")
            keys = ("source_file", "hash_key")
            insert_from_iceberg(
                con, index, "event_hash_keys", EqualTo("source_file", source_file), columns=keys
            )
            # A duplicate's date is not stored with it, so every date's index is read here;
            # DuckDB keeps only the wanted keys.
            insert_from_iceberg(
                con,
                index,
                "event_hash_keys",
                AlwaysTrue(),
                where="WHERE source_file <> $f AND hash_key IN (SELECT hash_key FROM wanted_keys)",
                params=mine,
                columns=keys,
            )
            others = files_sharing_keys(con, source_file, "wanted_keys")
            if others:
                insert_from_iceberg(
                    con,
                    self.table("events"),
                    "events",
                    In("source_file", others),
                    where="SEMI JOIN wanted_keys USING (event_hash)",
                    one_thread=True,
                )
            con.execute("DROP TABLE wanted_keys")
            yield con

    def record_report(self, con: duckdb.DuckDBPyConnection, report: ReconciliationReport) -> None:
        """Append the report to Iceberg (and to the partition's scratch copy `con`)."""
        record_report(con, report)
        # Converted by the same SQL as every other row, from a table holding only this one.
        with duckdb.connect(":memory:") as one:
            one.execute(RECONCILIATION_REPORTS.create_sql())
            record_report(one, report)
            select = "SELECT * FROM main.reconciliation_reports"
            append_rows(
                self.catalog,
                "reconciliation_reports",
                lambda table: partition_arrow(one, table, "reconciliation_reports", select, {}),
            )

    def columns(self, con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
        """The Iceberg table's live schema (what another engine or a schema change altered),
        not the scratch copy's, which is always created from the contract."""
        return duckdb_columns(TABLES[table].spec, self.table(table).schema())

    @contextmanager
    def publication_source(self) -> Iterator[Path]:
        """A DuckDB file with every table, for `publish_snapshot` to copy what is reconciled."""
        from pyiceberg.expressions import AlwaysTrue

        folder = Path(tempfile.mkdtemp(prefix="event-platform-publish-", dir=self.scratch_dir))
        try:
            path = folder / "warehouse.duckdb"
            con = open_database(path, read_only=False, memory_limit=self.memory_limit)
            try:
                create_tables(con, str(path))
                for name in _PARTITION_TABLES:
                    insert_from_iceberg(con, self.table(name), name, AlwaysTrue())
            finally:
                con.close()
            yield path
        finally:
            shutil.rmtree(folder, ignore_errors=True)
