"""The warehouse backend seam: what the lineage needs from a store, and the two stores.

- `duckdb` (default): one DuckDB file, one writer at a time; embedded, nothing to run.
- `iceberg`: Apache Iceberg tables in a PostgreSQL catalog (`store/iceberg/`), which many
  workers on many machines write at once, and other engines read.

Every rule (duplicates, reconciliation, the checks, what publication serves) is DuckDB SQL
written once: the Iceberg backend runs it on a scratch DuckDB database filled from and
committed to Iceberg.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Protocol

import duckdb

from event_platform.contract import StreamContract
from event_platform.reconcile.report import ReconciliationReport, record_report
from event_platform.store.schema import table_schema
from event_platform.store.writer import PartitionWriter, Reread

BACKENDS = ("duckdb", "iceberg")


class Warehouse(Protocol):
    name: str

    def partition_writer(
        self,
        contract: StreamContract,
        source_file: str,
        run_id: str,
        now: datetime,
        *,
        reread: Reread,
        log: Callable[[str], None] | None = None,
    ) -> PartitionWriter:
        """A writer replacing the partition atomically, used as a context manager."""
        ...

    def partition(self, source_file: str) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A connection where the warehouse's SQL reads the partition and proves its
        duplicates (reconciliation, the checks)."""
        ...

    def record_report(
        self, con: duckdb.DuckDBPyConnection, report: ReconciliationReport
    ) -> None: ...

    def columns(self, con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
        """The stored table's columns and types, in DuckDB's names: the warehouse's own, not
        those of a copy that `partition` made from the contract."""
        ...

    def publication_source(self) -> AbstractContextManager[Path]:
        """A DuckDB warehouse file that `publish_snapshot` copies what is reconciled from."""
        ...


class DuckDBWarehouse:
    """The DuckDB file, through one open connection: today's code, unchanged."""

    name = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path | None = None) -> None:
        self.con = con
        self.path = path

    def partition_writer(
        self,
        contract: StreamContract,
        source_file: str,
        run_id: str,
        now: datetime,
        *,
        reread: Reread,
        log: Callable[[str], None] | None = None,
    ) -> PartitionWriter:
        return PartitionWriter(self.con, contract, source_file, run_id, now, reread=reread, log=log)

    @contextmanager
    def partition(self, source_file: str) -> Iterator[duckdb.DuckDBPyConnection]:
        yield self.con

    def record_report(self, con: duckdb.DuckDBPyConnection, report: ReconciliationReport) -> None:
        record_report(con, report)

    def columns(self, con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
        return table_schema(con, table)

    @contextmanager
    def publication_source(self) -> Iterator[Path]:
        if self.path is None:
            raise ValueError("this DuckDB warehouse was opened without its path")
        yield self.path


def as_warehouse(store: duckdb.DuckDBPyConnection | Warehouse) -> Warehouse:
    """A DuckDB connection (what callers before the seam pass) as the DuckDB backend.

    Told apart by what a backend has rather than by the connection's class, so that a wrapper
    of a connection (a benchmark's statement timer) is taken for the connection it wraps.
    """
    if hasattr(store, "partition_writer"):
        return store
    return DuckDBWarehouse(store)
