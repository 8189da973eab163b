"""One spec per warehouse table: the DDL, the insert column lists and the API's field types.

Every statement names its columns from these specs, so a column added, moved or retyped is
changed here once and a positional mismatch cannot store a value in the wrong column.

No table declares a PRIMARY KEY or UNIQUE constraint, on purpose: on `events` an ART index makes
bulk inserts several times slower, the file much bigger, and lives in memory. The keys below (`key`)
are the ones the code keeps true (the writer's anti-join for `event_hash`, one `ingestions` row per
partition, replaced in the writer's transaction); asset checks watch them. Nullability is likewise
what the writer guarantees and what the API declares, not a constraint DuckDB checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

# The Python type a DuckDB type is read back as (and that an API response model declares).
_PYTHON_TYPES: dict[str, type] = {
    "VARCHAR": str,
    "INTEGER": int,
    "BIGINT": int,
    "UBIGINT": int,
    "BOOLEAN": bool,
    "TIMESTAMP": datetime,
    "DATE": date,
    "BLOB": bytes,
    "VARCHAR[]": list,
}

# The reason a valid line repeating a stored event is kept in `rejected_events` with.
DUPLICATE_REASON = "duplicate_event"


def hash_key_sql(event_hash: str) -> str:
    """SQL for `hash_key`: the first 64 bits of an event hash as an integer.

    Only a probe key for the writer's duplicate search (8 bytes a row to scan instead of a
    64-character string); two events are duplicates only when their full hashes are equal.
    """
    return f"('0x' || left({event_hash}, 16))::UBIGINT"


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    nullable: bool = False
    comment: str = ""
    # Chosen here rather than left to DuckDB; fixed when the table is created.
    compression: str | None = None
    # Whether the HTTP API serves it (its response models are built from the served columns).
    served: bool = True
    # Copied into the API's snapshots; internal bookkeeping stays in the warehouse.
    published: bool = True

    @property
    def python_type(self) -> type:
        return _PYTHON_TYPES[self.sql_type]

    def ddl(self) -> str:
        using = f" USING COMPRESSION {self.compression}" if self.compression else ""
        return f"{self.name} {self.sql_type}{using}"


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]
    comment: str = ""
    # The columns that identify a row, kept true by the code (see the module docstring).
    key: tuple[str, ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def types(self) -> dict[str, str]:
        """Column name -> SQL type, in table order."""
        return {column.name: column.sql_type for column in self.columns}

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def published_column_names(self) -> tuple[str, ...]:
        """The columns a snapshot holds, in table order."""
        return tuple(column.name for column in self.columns if column.published)

    def column_list(self, alias: str = "", *, published: bool = False) -> str:
        """`a, b, c` (or `x.a, x.b, x.c`): the columns by name, in table order; only the
        published ones when `published`."""
        prefix = f"{alias}." if alias else ""
        names = self.published_column_names if published else self.column_names
        return ", ".join(f"{prefix}{name}" for name in names)

    def create_sql(self, schema: str = "main", *, if_not_exists: bool = False) -> str:
        body = ", ".join(column.ddl() for column in self.columns)
        exists = " IF NOT EXISTS" if if_not_exists else ""
        return f"CREATE TABLE{exists} {schema}.{self.name} ({body})"

    def insert_sql(self, select: str, *, schema: str = "main") -> str:
        """`INSERT INTO t (columns) <select>`: `select` yields the spec's columns in order."""
        return f"INSERT INTO {schema}.{self.name} ({self.column_list()}) {select}"

    def insert_row_sql(self, schema: str = "main") -> str:
        """An insert of one row given as named parameters (`$column`), one per column."""
        values = ", ".join(f"${name}" for name in self.column_names)
        return self.insert_sql(f"VALUES ({values})", schema=schema)

    @property
    def served_columns(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns if column.served)

    def python_types(self) -> dict[str, tuple[type, bool]]:
        """Column -> (Python type, nullable): what an API response model declares."""
        return {column.name: (column.python_type, column.nullable) for column in self.columns}


# The line ledger (`reconcile/ledger.py`): every stored line carries the digest of its raw bytes
# (`ingest/hashing.py`). Null on rows stored before the ledger; such a partition is reconciled in
# full mode until it is ingested again.
_LINE_DIGEST = "XXH64 (seed 0) of the line's raw bytes; null if stored before the ledger"

EVENTS = TableSpec(
    "events",
    (
        # A sha256 in hex is random over 16 symbols: DuckDB's string compression halves it but costs
        # a quarter of the `events` INSERT, on the writer's thread, which bounds ingestion; plain
        # costs 33 bytes a row more. A warehouse created earlier keeps DuckDB's choice; both read
        # alike. See docs/performance.md.
        Column(
            "event_hash",
            "VARCHAR",
            comment="sha256 of the event's canonical values",
            compression="uncompressed",
        ),
        Column("event_type", "INTEGER"),
        Column("event_time", "TIMESTAMP"),
        Column("processing_date", "DATE", nullable=True),
        # Nearly every email and phone is distinct: DuckDB's own choice for them (`dict_fsst`)
        # is half of the `events` INSERT's CPU, on the writer's thread; zstd takes the same
        # space for half that. A warehouse created earlier keeps DuckDB's choice; both read
        # alike. See docs/performance.md.
        Column("user_email", "VARCHAR", nullable=True, compression="zstd"),
        Column("phone_number", "VARCHAR", nullable=True, compression="zstd"),
        Column("source_file", "VARCHAR", comment="the landed file (partition key)"),
        Column("line_number", "BIGINT", comment="1-based line of the source file"),
        Column("ingested_at", "TIMESTAMP", nullable=True),
        Column("run_id", "VARCHAR", comment="the ingestion run that stored the row", served=False),
        Column(
            "line_digest",
            "UBIGINT",
            nullable=True,
            comment=_LINE_DIGEST,
            served=False,
            published=False,
        ),
    ),
    comment="Valid events, one per distinct event_hash.",
    key=("event_hash",),
)

REJECTED_EVENTS = TableSpec(
    "rejected_events",
    (
        Column("source_file", "VARCHAR"),
        Column("line_number", "BIGINT"),
        Column("raw_line", "BLOB", nullable=True, comment="the line's bytes, exactly as read"),
        Column("reasons", "VARCHAR[]", comment="contract reasons, or [duplicate_event]"),
        Column("rejected_at", "TIMESTAMP"),
        Column("run_id", "VARCHAR"),
        Column(
            "line_digest",
            "UBIGINT",
            nullable=True,
            comment=_LINE_DIGEST,
            served=False,
            published=False,
        ),
        Column(
            "event_hash",
            "VARCHAR",
            nullable=True,
            comment="a duplicate's event hash, so its proof needs no re-parse; else null",
            served=False,
            published=False,
        ),
    ),
    comment="Invalid lines and duplicates of stored events, one row per line.",
    key=("source_file", "line_number"),
)

RECONCILIATION_REPORTS = TableSpec(
    "reconciliation_reports",
    (
        Column("source_file", "VARCHAR"),
        Column("file_sha256", "VARCHAR"),
        Column("lines_total", "BIGINT"),
        Column("valid", "BIGINT"),
        Column("rejected", "BIGINT"),
        Column("duplicates", "BIGINT"),
        Column("stored_rows", "BIGINT"),
        Column("missing_rows", "BIGINT"),
        Column("unexpected_rows", "BIGINT"),
        Column("mismatched_rows", "BIGINT"),
        Column("passed", "BOOLEAN"),
        Column("checked_at", "TIMESTAMP"),
        Column("run_id", "VARCHAR", comment="the run that reconciled"),
        Column(
            "ingest_run_id",
            "VARCHAR",
            nullable=True,
            comment="the ingestion run whose rows were reconciled (`ingestions.run_id`)",
            served=False,
        ),
        Column(
            "mode",
            "VARCHAR",
            comment="ledger (line digests and an independent sample) or full (every line)",
            served=False,
            published=False,
        ),
        Column(
            "sample_seed",
            "BIGINT",
            nullable=True,
            comment="ledger mode: the seed that drew the independent sample",
            served=False,
            published=False,
        ),
        Column(
            "sample_lines",
            "BIGINT",
            nullable=True,
            comment="ledger mode: the lines the independent sample re-derived",
            served=False,
            published=False,
        ),
    ),
    comment="Every reconciliation of a partition; the history per file is kept.",
)

# Replaced with the partition's rows, in the same transaction.
INGESTIONS = TableSpec(
    "ingestions",
    (
        Column("source_file", "VARCHAR"),
        Column("run_id", "VARCHAR"),
        Column("file_sha256", "VARCHAR", nullable=True),
        Column("lines_total", "BIGINT"),
        Column("stored", "BIGINT"),
        Column("rejected", "BIGINT"),
        Column("duplicates", "BIGINT"),
        Column("ingested_at", "TIMESTAMP"),
    ),
    comment="One row per stored partition: the run that stored it and the file version it read.",
    key=("source_file",),
)

# The writer's duplicate probe scans this instead of `events.event_hash` (see store/writer.py).
EVENT_HASH_KEYS = TableSpec(
    "event_hash_keys",
    (
        Column("source_file", "VARCHAR"),
        Column("hash_key", "UBIGINT", comment="the first 64 bits of event_hash"),
    ),
    comment="Internal index: each stored event's hash_key, by file.",
)

SPECS: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (EVENTS, REJECTED_EVENTS, RECONCILIATION_REPORTS, EVENT_HASH_KEYS, INGESTIONS)
}
