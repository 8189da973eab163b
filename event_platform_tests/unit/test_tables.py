"""The table specs drive the DDL and the inserts, by column name."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import duckdb

from event_platform.reconcile import ReconciliationReport, record_report
from event_platform.store.schema import table_schema
from event_platform.store.tables import EVENTS, RECONCILIATION_REPORTS, SPECS


def test_the_report_dataclass_and_its_table_have_the_same_columns() -> None:
    # What a run shows but the table does not keep: line samples, ledger details, a mode note.
    shown_only = {"samples", "details", "note"}
    fields = {field.name for field in dataclasses.fields(ReconciliationReport)} - shown_only
    assert fields == set(RECONCILIATION_REPORTS.column_names)


def test_a_report_is_recorded_by_column_name_whatever_the_table_order() -> None:
    con = duckdb.connect(":memory:")
    reversed_body = ", ".join(
        f"{name} {sql_type}" for name, sql_type in reversed(RECONCILIATION_REPORTS.types.items())
    )
    con.execute(f"CREATE TABLE main.reconciliation_reports ({reversed_body})")
    report = ReconciliationReport(
        source_file="a.jsonl",
        file_sha256="ab" * 32,
        lines_total=7,
        valid=5,
        rejected=1,
        duplicates=1,
        stored_rows=5,
        missing_rows=0,
        unexpected_rows=0,
        mismatched_rows=0,
        passed=True,
        checked_at=datetime(2026, 1, 2, 3, 4, 5),
        run_id="reconciling-run",
        ingest_run_id="ingesting-run",
        samples={"missing": [3]},
    )
    record_report(con, report)
    result = con.execute(
        f"SELECT {RECONCILIATION_REPORTS.column_list()} FROM main.reconciliation_reports"
    )
    assert dict(zip(RECONCILIATION_REPORTS.column_names, result.fetchone(), strict=True)) == (
        report.row()
    )


def test_the_ddl_is_the_spec() -> None:
    con = duckdb.connect(":memory:")
    for spec in SPECS.values():
        con.execute(spec.create_sql())
        assert table_schema(con, spec.name) == spec.types
    assert "event_hash VARCHAR USING COMPRESSION uncompressed" in EVENTS.create_sql()
    assert EVENTS.insert_sql("SELECT * FROM x").startswith(
        f"INSERT INTO main.events ({EVENTS.column_list()}) SELECT"
    )
