"""The reconciliation report: one partition's verdict, and how it is recorded.

A report is recorded by column name from the `reconciliation_reports` spec, so the order of
the dataclass's fields is free and a field missing from the table fails at once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

import duckdb

from event_platform.store.tables import RECONCILIATION_REPORTS

# Line numbers kept per verdict, to show where a failing partition went wrong.
SAMPLE_SIZE = 10


@dataclass
class ReconciliationReport:
    source_file: str
    file_sha256: str
    lines_total: int
    valid: int
    rejected: int
    duplicates: int
    stored_rows: int
    missing_rows: int
    unexpected_rows: int
    mismatched_rows: int
    passed: bool
    checked_at: datetime
    run_id: str
    # The ingestion run whose stored rows were compared with the file (None: never ingested).
    ingest_run_id: str | None = None
    # The mode that ran (`partition.MODES`); in ledger mode, the sample's seed and the lines it
    # re-derived.
    mode: str = "full"
    sample_seed: int | None = None
    sample_lines: int | None = None
    samples: dict[str, list[int]] = field(default_factory=dict)
    # Ledger mode: rows per ledger class and the sample's disagreements (`sample_mismatched`).
    # Shown on the run, not stored.
    details: dict[str, int] = field(default_factory=dict)
    # Why the mode that ran is not the one asked for, if it is not.
    note: str | None = None

    def row(self) -> dict[str, object]:
        """The columns of `reconciliation_reports`, by name."""
        values = asdict(self)
        return {name: values[name] for name in RECONCILIATION_REPORTS.column_names}


def record_report(con: duckdb.DuckDBPyConnection, report: ReconciliationReport) -> None:
    """Append the report; the history of reports per file is kept."""
    con.execute(RECONCILIATION_REPORTS.insert_row_sql(), report.row())
