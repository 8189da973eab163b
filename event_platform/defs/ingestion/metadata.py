"""Materialization metadata shared by the assets: what a user would otherwise query for."""

from __future__ import annotations

import dagster as dg

from event_platform.store.tables import SPECS


def column_schema(table: str) -> dg.TableSchema:
    """The table's spec as the catalog shows it: types, comments and which may be null."""
    spec = SPECS[table]
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                column.name,
                column.sql_type,
                description=column.comment or None,
                constraints=dg.TableColumnConstraints(nullable=column.nullable),
            )
            for column in spec.columns
        ]
    )


def table_metadata(table: str, row_count: int) -> dict[str, object]:
    """Dagster's standard keys, so the catalog shows the schema and plots the row count."""
    return {
        "dagster/table_name": f"main.{table}",
        "dagster/column_schema": column_schema(table),
        "dagster/row_count": dg.MetadataValue.int(row_count),
    }


def counts_table(counts: dict[str, int], key_name: str) -> dg.MetadataValue:
    return dg.MetadataValue.table(
        records=[dg.TableRecord({key_name: key, "lines": value}) for key, value in counts.items()],
        schema=dg.TableSchema(
            columns=[dg.TableColumn(key_name, "string"), dg.TableColumn("lines", "int")]
        ),
    )
