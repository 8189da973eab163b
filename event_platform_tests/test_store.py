"""The store: atomic replacement of a partition, duplicates, nothing lost."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from event_platform.contract import EVENTS_CONTRACT
from event_platform.ingestion import ingest_file
from event_platform.store.connection import connect
from event_platform.store.schema import TABLES, table_schema
from event_platform.store.writer import PartitionWriter
from event_platform_tests.conftest import event_line, write_lines


def counts(con: duckdb.DuckDBPyConnection, source_file: str) -> tuple[int, int, int]:
    return con.execute(
        """
        SELECT (SELECT count(*) FROM events WHERE source_file = $f),
               (SELECT count(*) FROM rejected_events
                 WHERE source_file = $f AND reasons <> ['duplicate_event']),
               (SELECT count(*) FROM rejected_events
                 WHERE source_file = $f AND reasons = ['duplicate_event'])
        """,
        {"f": source_file},
    ).fetchone()


@pytest.fixture
def con(tmp_path: Path):
    with connect(tmp_path / "warehouse.duckdb") as connection:
        yield connection


def test_tables_exist_with_the_documented_schema(con) -> None:
    for table, columns in TABLES.items():
        assert table_schema(con, table) == columns
    assert con.execute("SELECT count(*) FROM events").fetchone() == (0,)


def test_every_line_lands_in_exactly_one_place(tmp_path: Path, con) -> None:
    path = write_lines(tmp_path / "a.jsonl", [event_line(1), "", event_line(2), event_line(1)])
    result = ingest_file(path, con, run_id="run-1")
    assert (result.lines, result.stored, result.rejected, result.duplicates) == (4, 2, 1, 1)
    assert counts(con, "a.jsonl") == (2, 1, 1)
    rows = con.execute(
        "SELECT line_number, reasons FROM rejected_events ORDER BY line_number"
    ).fetchall()
    assert rows == [(2, ["empty_line"]), (4, ["duplicate_event"])]
    assert result.reason_counts == {"empty_line": 1, "duplicate_event": 1}


def test_rerun_replaces_the_partition_and_is_not_a_duplicate_of_itself(tmp_path: Path, con) -> None:
    path = write_lines(tmp_path / "a.jsonl", [event_line(1), event_line(2), "x"])
    ingest_file(path, con, run_id="run-1")
    again = ingest_file(path, con, run_id="run-2")
    assert (again.stored, again.rejected, again.duplicates) == (2, 1, 0)
    assert counts(con, "a.jsonl") == (2, 1, 0)
    assert con.execute("SELECT DISTINCT run_id FROM events").fetchall() == [("run-2",)]


def test_an_event_stored_from_another_file_is_a_duplicate(tmp_path: Path, con) -> None:
    first = write_lines(tmp_path / "a.jsonl", [event_line(1), event_line(2)])
    second = write_lines(tmp_path / "b.jsonl", [event_line(2), event_line(3)])
    ingest_file(first, con, run_id="r")
    result = ingest_file(second, con, run_id="r")
    assert (result.stored, result.duplicates) == (1, 1)
    stored = con.execute("SELECT count(DISTINCT event_hash), count(*) FROM events").fetchone()
    assert stored == (3, 3)


def test_a_new_version_of_a_file_replaces_the_old_rows(tmp_path: Path, con) -> None:
    path = write_lines(tmp_path / "a.jsonl", [event_line(1), event_line(2), event_line(3)])
    ingest_file(path, con, run_id="v1")
    write_lines(path, [event_line(4)])
    ingest_file(path, con, run_id="v2")
    assert counts(con, "a.jsonl") == (1, 0, 0)
    assert con.execute("SELECT user_email FROM events").fetchall() == [("user4@example.com",)]


def test_a_failure_mid_write_rolls_back_to_the_previous_partition(tmp_path: Path, con) -> None:
    path = write_lines(tmp_path / "a.jsonl", [event_line(1), event_line(2)])
    ingest_file(path, con, run_id="good")
    writer = PartitionWriter(con, EVENTS_CONTRACT, "a.jsonl", "bad", datetime.now(UTC))
    with pytest.raises(RuntimeError, match="crash"), writer:
        raise RuntimeError("crash after the delete, before any insert")
    assert counts(con, "a.jsonl") == (2, 0, 0)
    assert con.execute("SELECT DISTINCT run_id FROM events").fetchall() == [("good",)]


def test_values_are_stored_with_their_types(tmp_path: Path, con) -> None:
    path = write_lines(tmp_path / "a.jsonl", [event_line(5)])
    ingest_file(path, con, run_id="r")
    row = con.execute(
        "SELECT event_type, CAST(event_time AS VARCHAR), CAST(processing_date AS VARCHAR), "
        "user_email, phone_number, line_number, length(event_hash) FROM events"
    ).fetchone()
    assert row == (7, "2019-01-04 05:07:26", "2019-01-04", "user5@example.com", "0600000005", 1, 64)


def test_event_hash_is_the_documented_sha256(tmp_path: Path, con) -> None:
    import hashlib

    path = write_lines(tmp_path / "a.jsonl", [event_line(5)])
    ingest_file(path, con, run_id="r")
    canonical = "\x1f".join(
        ["7", "2019-01-04 05:07:26", "2019-01-04", "user5@example.com", "0600000005"]
    )
    expected = hashlib.sha256(canonical.encode()).hexdigest()
    assert con.execute("SELECT event_hash FROM events").fetchone() == (expected,)
