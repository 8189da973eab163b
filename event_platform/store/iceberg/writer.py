"""Writes one partition into Iceberg: the DuckDB writer on a scratch database, then commits.

The file's chunks go through `PartitionWriter` unchanged, into a scratch DuckDB database that
starts empty, so every duplicate rule is the DuckDB backend's. Before the settle after the last
chunk, the worker takes the advisory locks of the file and of every date its events carry
(`locks.py`), and loads what the settle searches: the other files' index entries for those
dates that share a key with this file, and those files' events with one of this file's hashes.
The settle then decides exactly as on DuckDB, and the partition is committed to Iceberg while
the locks are held.

Four tables, four commits (Iceberg commits one table at a time), in this order: `events`,
`rejected_events`, `event_hash_keys`, then `ingestions`, whose commit names the others'
snapshot ids in its summary. Publication serves a partition's events only when their `run_id`
is the one `ingestions` names and a passing reconciliation vouches for that run, so a worker
killed between commits leaves a version that is never served, and the next run replaces it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from event_platform.contract import StreamContract
from event_platform.store.iceberg.io import (
    insert_from_iceberg,
    partition_batches,
    replace_partition,
)
from event_platform.store.iceberg.locks import AdvisoryLocks, date_keys, lock_key
from event_platform.store.other_files import files_sharing_keys
from event_platform.store.tables import hash_key_sql
from event_platform.store.writer import PartitionWriter, Reread

if TYPE_CHECKING:
    from event_platform.store.iceberg.warehouse import IcebergWarehouse


def dates_filter(dates: list[object]):  # -> pyiceberg BooleanExpression
    """Rows of the given `processing_date`s (None: a null date)."""
    from pyiceberg.expressions import AlwaysFalse, In, IsNull, Or

    known = sorted(day.isoformat() for day in dates if day is not None)
    expression = In("processing_date", known) if known else AlwaysFalse()
    if None in dates:
        expression = Or(expression, IsNull("processing_date"))
    return expression


class IcebergPartitionWriter(PartitionWriter):
    """`PartitionWriter` on a scratch database, committed to Iceberg on clean exit."""

    def __init__(
        self,
        store: IcebergWarehouse,
        contract: StreamContract,
        source_file: str,
        run_id: str,
        now: datetime,
        *,
        reread: Reread,
        log=None,
    ) -> None:
        self.store = store
        self._scratch = store.scratch()
        super().__init__(
            self._scratch.__enter__(), contract, source_file, run_id, now, reread=reread, log=log
        )
        self._locks: AdvisoryLocks | None = None
        self.snapshots: dict[str, int | None] = {}

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            super().__exit__(exc_type, exc, tb)
            if exc_type is None:
                self._commit_to_iceberg()
        finally:
            if self._locks is not None:
                self._locks.close()
            self._scratch.__exit__(None, None, None)

    stored_in_others = (
        "SELECT event_hash FROM main.other_events WHERE source_file IN (SELECT unnest($others))"
    )

    def _settle(self) -> None:
        self.con.execute(
            "CREATE OR REPLACE TABLE main.other_events (source_file VARCHAR, event_hash VARCHAR)"
        )
        source_file = str(self.params["source_file"])
        mine = {"f": source_file}
        dates = [
            day
            for (day,) in self.con.execute(
                "SELECT DISTINCT processing_date FROM main.events WHERE source_file = $f", mine
            ).fetchall()
        ]
        self._locks = AdvisoryLocks(self.store.catalog_uri)
        self._locks.acquire({lock_key("source_file", source_file)} | date_keys(dates))
        catalog = self.store.catalog
        if dates:
            insert_from_iceberg(
                self.con,
                catalog.load_table(("event_platform", "event_hash_keys")),
                "event_hash_keys",
                dates_filter(dates),
                where="WHERE source_file <> $f AND hash_key IN (SELECT hash_key FROM file_keys)",
                params=mine,
                columns=("source_file", "hash_key"),
            )
        others = files_sharing_keys(self.con, source_file, "file_keys")
        if others:
            from pyiceberg.expressions import In

            # Only the two columns the settle reads, one join a statement, so that DuckDB can
            # spill each (see `store/other_files.py`).
            self.con.execute(
                "CREATE OR REPLACE TEMP TABLE settle_hashes AS "
                "SELECT event_hash FROM main.events WHERE source_file = $f",
                mine,
            )
            insert_from_iceberg(
                self.con,
                catalog.load_table(("event_platform", "events")),
                "events",
                In("source_file", others),
                where="SEMI JOIN settle_hashes USING (event_hash)",
                target="other_events",
                columns=("source_file", "event_hash"),
                one_thread=True,
            )
            self.con.execute("DROP TABLE settle_hashes")
        super()._settle()

    def _commit_to_iceberg(self) -> None:
        source_file = str(self.params["source_file"])
        mine = {"f": source_file}
        catalog = self.store.catalog

        def rows(name: str, select: str):
            return lambda table: partition_batches(self.con, table, name, select, mine)

        for name in ("events", "rejected_events"):
            self.snapshots[name] = replace_partition(
                catalog,
                name,
                source_file,
                rows(name, f"SELECT * FROM main.{name} WHERE source_file = $f"),
                log=self.log,
            )
        index = (
            f"SELECT processing_date, source_file, {hash_key_sql('event_hash')} AS hash_key "
            # By date, so that each batch's files split over few date partitions.
            "FROM main.events WHERE source_file = $f ORDER BY processing_date"
        )
        self.snapshots["event_hash_keys"] = replace_partition(
            catalog, "event_hash_keys", source_file, rows("event_hash_keys", index), log=self.log
        )
        self.snapshots["ingestions"] = replace_partition(
            catalog,
            "ingestions",
            source_file,
            rows("ingestions", "SELECT * FROM main.ingestions WHERE source_file = $f"),
            log=self.log,
            properties={
                "event-platform.run-id": str(self.params["run_id"]),
                **{
                    f"event-platform.{name}-snapshot": str(sid)
                    for name, sid in self.snapshots.items()
                },
            },
        )
