"""The warehouse's tables in an Iceberg catalog, derived from the same `TableSpec`s as DuckDB's.

Partition specs, chosen for the queries that matter:
- `events`, `rejected_events`, `ingestions`: identity on `source_file`. Every write replaces one
  file's rows and every reconciliation and check reads one file's rows, so a replace drops
  whole data files (no copy-on-write rewrite of other files' rows) and a read plans only that
  partition's files. Engines that read by date (BigQuery, Trino, Spark) still skip most files
  through the per-file min/max of `processing_date` and `event_time`.
- `reconciliation_reports`: identity on `source_file` too; reports are appended, never replaced.
- `event_hash_keys`: identity on `processing_date`, then `source_file`. An event's duplicates
  share its `processing_date`, so a file's duplicate search reads only the dates it holds,
  not every key ever stored; `source_file` lets a replace drop the file's own index files.

Iceberg has no unsigned 64-bit type: `UBIGINT` columns (`hash_key`, `line_digest`) are stored as
`long` holding the same 64 bits (two's complement), converted in SQL on the way in and out.
"""

from __future__ import annotations

from dataclasses import dataclass

from event_platform.store.tables import (
    EVENTS,
    INGESTIONS,
    RECONCILIATION_REPORTS,
    REJECTED_EVENTS,
    Column,
    TableSpec,
)

NAMESPACE = "event_platform"

# The Iceberg duplicate index: each stored event's 64-bit key, by date and file.
EVENT_HASH_KEYS = TableSpec(
    "event_hash_keys",
    (
        Column("processing_date", "DATE", nullable=True),
        Column("source_file", "VARCHAR"),
        Column("hash_key", "UBIGINT", comment="the first 64 bits of event_hash"),
    ),
    comment="Internal index: each stored event's hash_key, by processing_date and file.",
)


@dataclass(frozen=True)
class IcebergTable:
    spec: TableSpec
    partition_by: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def identifier(self) -> tuple[str, str]:
        return (NAMESPACE, self.spec.name)


TABLES: dict[str, IcebergTable] = {
    table.name: table
    for table in (
        IcebergTable(EVENTS, ("source_file",)),
        IcebergTable(REJECTED_EVENTS, ("source_file",)),
        IcebergTable(INGESTIONS, ("source_file",)),
        IcebergTable(RECONCILIATION_REPORTS, ("source_file",)),
        IcebergTable(EVENT_HASH_KEYS, ("processing_date", "source_file")),
    )
}

_TWO_64 = 18446744073709551616
_TWO_63 = 9223372036854775808


def stored_expression(column: Column, alias: str = "") -> str:
    """SQL turning a DuckDB column into the value Iceberg stores (UBIGINT -> the same bits)."""
    name = f"{alias}.{column.name}" if alias else column.name
    if column.sql_type == "UBIGINT":
        return (
            f"CASE WHEN {name} >= {_TWO_63} THEN ({name}::HUGEINT - {_TWO_64})::BIGINT "
            f"ELSE {name}::BIGINT END AS {column.name}"
        )
    return f"{name} AS {column.name}"


def loaded_expression(column: Column) -> str:
    """SQL turning a value Iceberg stored back into the DuckDB column's type."""
    name = column.name
    if column.sql_type == "UBIGINT":
        return (
            f"CASE WHEN {name} < 0 THEN ({name}::HUGEINT + {_TWO_64})::UBIGINT "
            f"ELSE {name}::UBIGINT END AS {name}"
        )
    return f"{name}::{column.sql_type} AS {name}"


def iceberg_schema(spec: TableSpec):  # -> pyiceberg.schema.Schema
    """The Iceberg schema of a spec; every field optional, as DuckDB's columns are."""
    from pyiceberg.schema import Schema
    from pyiceberg.types import (
        BinaryType,
        BooleanType,
        DateType,
        IntegerType,
        ListType,
        LongType,
        NestedField,
        StringType,
        TimestampType,
    )

    scalar = {
        "VARCHAR": StringType,
        "INTEGER": IntegerType,
        "BIGINT": LongType,
        "UBIGINT": LongType,
        "BOOLEAN": BooleanType,
        "TIMESTAMP": TimestampType,
        "DATE": DateType,
        "BLOB": BinaryType,
    }
    fields = []
    next_id = len(spec.columns) + 1
    for field_id, column in enumerate(spec.columns, start=1):
        if column.sql_type == "VARCHAR[]":
            kind = ListType(next_id, StringType(), element_required=False)
            next_id += 1
        else:
            kind = scalar[column.sql_type]()
        fields.append(NestedField(field_id, column.name, kind, required=False))
    return Schema(*fields)


def duckdb_columns(spec: TableSpec, schema) -> dict[str, str]:
    """An Iceberg schema's columns in DuckDB's type names, in order, as `table_schema` reports
    the DuckDB file's: so one comparison with the contract serves both backends. A `long`
    where the spec has `UBIGINT` is that column's stored form, so it reads as `UBIGINT`."""
    from pyiceberg.types import ListType, LongType

    names = _duckdb_names()

    def name_of(kind) -> str:
        if isinstance(kind, ListType):
            return f"{name_of(kind.element_type)}[]"
        return names.get(type(kind), str(kind))

    declared = {column.name: column.sql_type for column in spec.columns}
    return {
        field.name: (
            "UBIGINT"
            if declared.get(field.name) == "UBIGINT" and isinstance(field.field_type, LongType)
            else name_of(field.field_type)
        )
        for field in schema.fields
    }


def _duckdb_names() -> dict[type, str]:
    from pyiceberg.types import (
        BinaryType,
        BooleanType,
        DateType,
        IntegerType,
        LongType,
        StringType,
        TimestampType,
    )

    return {
        StringType: "VARCHAR",
        IntegerType: "INTEGER",
        LongType: "BIGINT",
        BooleanType: "BOOLEAN",
        TimestampType: "TIMESTAMP",
        DateType: "DATE",
        BinaryType: "BLOB",
    }


def partition_spec(table: IcebergTable, schema):  # -> pyiceberg.partitioning.PartitionSpec
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.transforms import IdentityTransform

    return PartitionSpec(
        *(
            PartitionField(
                source_id=schema.find_field(name).field_id,
                field_id=1000 + position,
                transform=IdentityTransform(),
                name=name,
            )
            for position, name in enumerate(table.partition_by)
        )
    )
