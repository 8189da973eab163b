"""The lineage's key promises, on each warehouse backend (DuckDB file and Iceberg).

The scenarios of test_store.py (replace, duplicates within and across files) and
test_reconciliation.py (every corruption caught, in both modes), written against `Backend`:
on Iceberg, corruption is committed to the Iceberg tables and reconciliation reads them back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from event_platform.generator import generate_file
from event_platform.ingest.ingestion import ingest_file
from event_platform.reconcile import MODES, reconcile_partition
from event_platform_tests.conftest import event_line, write_lines

LINES = [event_line(i) for i in range(1, 9)] + ["", "{bad", event_line(3)]


def counts(backend, source_file: str) -> tuple[int, int, int]:
    with backend.read(source_file) as con:
        [row] = con.execute(
            """
            SELECT (SELECT count(*) FROM events WHERE source_file = $f),
                   (SELECT count(*) FROM rejected_events
                     WHERE source_file = $f AND reasons <> ['duplicate_event']),
                   (SELECT count(*) FROM rejected_events
                     WHERE source_file = $f AND reasons = ['duplicate_event'])
            """,
            {"f": source_file},
        ).fetchall()
    return row


def reconcile(backend, path: Path, mode: str = "ledger", *, record: bool = False):
    with backend.read(path.name) as con:
        report = reconcile_partition(path, con, run_id="check", chunk_bytes=512, mode=mode)
        if record:
            backend.record(con, report)
    return report


def test_every_line_lands_in_exactly_one_place(tmp_path: Path, backend) -> None:
    path = write_lines(tmp_path / "a.jsonl", [event_line(1), "", event_line(2), event_line(1)])
    result = ingest_file(path, backend.store, run_id="run-1")
    assert (result.lines, result.stored, result.rejected, result.duplicates) == (4, 2, 1, 1)
    assert counts(backend, "a.jsonl") == (2, 1, 1)
    with backend.read("a.jsonl") as con:
        rows = con.execute(
            "SELECT line_number, reasons FROM rejected_events ORDER BY line_number"
        ).fetchall()
    assert rows == [(2, ["empty_line"]), (4, ["duplicate_event"])]


def test_rerun_replaces_the_partition_and_is_not_a_duplicate_of_itself(
    tmp_path: Path, backend
) -> None:
    path = write_lines(tmp_path / "a.jsonl", [event_line(1), event_line(2), "x"])
    ingest_file(path, backend.store, run_id="run-1")
    again = ingest_file(path, backend.store, run_id="run-2")
    assert (again.stored, again.rejected, again.duplicates) == (2, 1, 0)
    assert counts(backend, "a.jsonl") == (2, 1, 0)
    with backend.read("a.jsonl") as con:
        assert con.execute("SELECT DISTINCT run_id FROM events").fetchall() == [("run-2",)]
        assert con.execute("SELECT run_id FROM ingestions").fetchall() == [("run-2",)]


def test_an_event_stored_from_another_file_is_a_duplicate(tmp_path: Path, backend) -> None:
    first = write_lines(tmp_path / "a.jsonl", [event_line(1), event_line(2)])
    second = write_lines(tmp_path / "b.jsonl", [event_line(2), event_line(3)])
    ingest_file(first, backend.store, run_id="r")
    result = ingest_file(second, backend.store, run_id="r")
    assert (result.stored, result.duplicates) == (1, 1)
    assert counts(backend, "a.jsonl")[0] + counts(backend, "b.jsonl")[0] == 3
    assert reconcile(backend, second).passed


def test_a_file_landed_again_under_another_name_is_all_duplicates(tmp_path: Path, backend) -> None:
    first = tmp_path / "a.jsonl"
    truth = generate_file(first, 20_000, seed=3)
    second = tmp_path / "b.jsonl"
    second.write_bytes(first.read_bytes())
    ingest_file(first, backend.store, run_id="a")
    result = ingest_file(second, backend.store, run_id="b")
    assert (result.stored, result.duplicates) == (0, truth.valid)
    assert counts(backend, "b.jsonl") == (0, truth.lines - truth.valid, truth.valid)
    with backend.read("b.jsonl") as con:
        report = reconcile_partition(second, con, run_id="check")
    assert report.passed and report.duplicates == truth.valid


def test_duplicates_of_other_files_keep_their_own_text(tmp_path: Path, backend) -> None:
    ingest_file(
        write_lines(tmp_path / "a.jsonl", [event_line(i) for i in range(3)]),
        backend.store,
        run_id="a",
    )
    lines = [event_line(0), *[event_line(i) for i in range(100, 160)], event_line(0)]
    second = write_lines(tmp_path / "b.jsonl", lines, newline="\r\n")
    result = ingest_file(second, backend.store, run_id="b", chunk_bytes=1_000, workers=2)
    assert (result.stored, result.rejected, result.duplicates) == (60, 0, 2)
    with backend.read("b.jsonl") as con:
        duplicates = con.execute(
            "SELECT line_number, raw_line FROM rejected_events WHERE source_file = 'b.jsonl' "
            "ORDER BY line_number"
        ).fetchall()
        keys = con.execute("SELECT count(*) FROM event_hash_keys WHERE source_file = 'b.jsonl'")
        assert keys.fetchall() == [(60,)]
    assert duplicates == [(1, f"{event_line(0)}\r".encode()), (62, f"{event_line(0)}\r".encode())]
    assert reconcile(backend, second).passed


@pytest.fixture
def stored(tmp_path: Path, backend):
    path = write_lines(tmp_path / "a.jsonl", LINES)
    ingest_file(path, backend.store, run_id="r", chunk_bytes=512)
    return path, backend


@pytest.fixture(params=MODES)
def mode(request) -> str:
    return request.param


def test_a_faithful_store_passes(stored, mode: str) -> None:
    path, backend = stored
    report = reconcile(backend, path, mode, record=True)
    assert report.passed and report.mode == mode
    assert (report.lines_total, report.valid, report.rejected, report.duplicates) == (11, 8, 2, 1)
    with backend.read(path.name) as con:
        recorded = con.execute("SELECT passed, mode FROM reconciliation_reports").fetchall()
    assert recorded == [(True, mode)]


def test_a_deleted_row_is_missing(stored, mode: str) -> None:
    path, backend = stored
    backend.corrupt(path.name, "DELETE FROM events WHERE line_number = 4")
    report = reconcile(backend, path, mode)
    assert (report.missing_rows, report.unexpected_rows, report.mismatched_rows) == (1, 0, 0)
    assert report.samples["missing"] == [4]


def test_an_altered_row_is_mismatched(stored, mode: str) -> None:
    path, backend = stored
    backend.corrupt(
        path.name, "UPDATE events SET phone_number = '0000000000' WHERE line_number = 5"
    )
    report = reconcile(backend, path, mode)
    assert (report.missing_rows, report.unexpected_rows, report.mismatched_rows) == (0, 0, 1)
    assert report.samples["mismatched"] == [5]


def test_an_altered_rejection_is_mismatched(stored, mode: str) -> None:
    path, backend = stored
    backend.corrupt(path.name, "UPDATE rejected_events SET raw_line = NULL WHERE line_number = 10")
    report = reconcile(backend, path, mode)
    assert (report.missing_rows, report.unexpected_rows, report.mismatched_rows) == (0, 0, 1)


def test_an_extra_row_is_unexpected(stored, mode: str) -> None:
    path, backend = stored
    backend.corrupt(
        path.name,
        "INSERT INTO events SELECT * REPLACE (99 AS line_number) FROM events LIMIT 1",
        "INSERT INTO events SELECT * FROM events WHERE line_number = 1",
    )
    report = reconcile(backend, path, mode)
    assert report.unexpected_rows == 2 and report.samples["unexpected"] == [1, 99]


def test_an_event_passed_off_as_a_duplicate_is_missing(stored, mode: str) -> None:
    path, backend = stored
    backend.corrupt(
        path.name,
        "INSERT INTO rejected_events SELECT source_file, line_number, $raw, "
        "['duplicate_event'], ingested_at, run_id, line_digest, event_hash FROM events "
        "WHERE line_number = 5",
        "DELETE FROM events WHERE line_number = 5",
        params={"raw": LINES[4].encode()},
    )
    report = reconcile(backend, path, mode)
    assert (report.missing_rows, report.unexpected_rows, report.mismatched_rows) == (1, 0, 0)


def test_a_duplicate_of_another_file_holds_while_that_file_holds_its_event(
    tmp_path: Path, backend, mode: str
) -> None:
    first = write_lines(tmp_path / "a.jsonl", [event_line(1), event_line(2)])
    second = write_lines(tmp_path / "b.jsonl", [event_line(2), event_line(3)])
    ingest_file(first, backend.store, run_id="r")
    ingest_file(second, backend.store, run_id="r")
    report = reconcile(backend, second, mode)
    assert report.passed and report.duplicates == 1
    write_lines(first, [event_line(1)])
    ingest_file(first, backend.store, run_id="r2")
    orphaned = reconcile(backend, second, mode)
    assert orphaned.missing_rows == 1 and orphaned.samples["missing"] == [1]
