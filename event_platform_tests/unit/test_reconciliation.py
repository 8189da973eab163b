"""Reconciliation re-reads the file and catches every way the store can drift from it.

The corruption tests run on each warehouse backend (`backend`): the store is altered in the
store itself (on Iceberg, committed back as a new snapshot) and reconciliation reads it back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from event_platform.ingest.ingestion import ingest_file
from event_platform.reconcile import MODES, reconcile_partition
from event_platform.store.connection import connect
from event_platform_tests.conftest import event_line, write_lines
from event_platform_tests.iceberg_catalog import Backend

LINES = [event_line(i) for i in range(1, 9)] + ["", "{bad", event_line(3)]


@pytest.fixture
def stored(tmp_path: Path):
    path = write_lines(tmp_path / "a.jsonl", LINES)
    with connect(tmp_path / "w.duckdb") as con:
        ingest_file(path, con, run_id="r", chunk_bytes=512)
        yield path, con


@pytest.fixture(params=MODES)
def mode(request) -> str:
    """Every corruption must be caught in each mode: by the ledger and its sample by default."""
    return request.param


@pytest.fixture
def stored_on(tmp_path: Path, backend: Backend):
    path = write_lines(tmp_path / "a.jsonl", LINES)
    ingest_file(path, backend.store, run_id="r", chunk_bytes=512)
    return path, backend


def reconcile(path: Path, con, mode: str):
    if isinstance(con, Backend):
        with con.read(path.name) as read:
            return reconcile(path, read, mode)
    return reconcile_partition(path, con, run_id="check", chunk_bytes=512, mode=mode)


def test_a_faithful_store_passes(stored_on, mode: str) -> None:
    path, backend = stored_on
    with backend.read(path.name) as con:
        report = reconcile(path, con, mode)
        backend.record(con, report)
    assert report.passed and report.mode == mode
    assert (report.lines_total, report.valid, report.rejected, report.duplicates) == (11, 8, 2, 1)
    assert (report.missing_rows, report.unexpected_rows, report.mismatched_rows) == (0, 0, 0)
    assert backend.rows(path.name, "SELECT passed, mode FROM reconciliation_reports") == [
        (True, mode)
    ]


def test_progress_is_reported_after_every_chunk(stored, mode: str) -> None:
    path, con = stored
    calls: list[tuple[int, int]] = []
    report = reconcile_partition(
        path,
        con,
        run_id="check",
        chunk_bytes=512,
        progress=lambda *done: calls.append(done),
        mode=mode,
    )
    assert report.passed and len(calls) > 1
    lines = [line for line, _ in calls]
    assert lines == sorted(set(lines)) and calls[-1] == (11, path.stat().st_size)


def test_a_deleted_row_is_missing(stored_on, mode: str) -> None:
    path, backend = stored_on
    backend.corrupt(path.name, "DELETE FROM events WHERE line_number = 4")
    report = reconcile(path, backend, mode)
    assert not report.passed
    assert (report.missing_rows, report.unexpected_rows, report.mismatched_rows) == (1, 0, 0)
    assert report.samples["missing"] == [4]


def test_an_altered_row_is_mismatched(stored_on, mode: str) -> None:
    path, backend = stored_on
    backend.corrupt(
        path.name, "UPDATE events SET phone_number = '0000000000' WHERE line_number = 5"
    )
    report = reconcile(path, backend, mode)
    assert not report.passed
    assert (report.missing_rows, report.unexpected_rows, report.mismatched_rows) == (0, 0, 1)
    assert report.samples["mismatched"] == [5]


def test_a_sub_second_change_to_a_stored_time_is_mismatched(stored_on, mode: str) -> None:
    # A valid line's time has whole seconds, so the stored rendering must show any fraction:
    # formatting it to whole seconds would make this row hash like the file's line.
    path, backend = stored_on
    backend.corrupt(
        path.name,
        "UPDATE events SET event_time = event_time + INTERVAL 500 MILLISECOND "
        "WHERE line_number = 6",
    )
    report = reconcile(path, backend, mode)
    assert (report.missing_rows, report.unexpected_rows, report.mismatched_rows) == (0, 0, 1)
    assert report.samples["mismatched"] == [6]


def test_an_altered_hash_is_mismatched(stored_on, mode: str) -> None:
    path, backend = stored_on
    backend.corrupt(
        path.name, "UPDATE events SET event_hash = repeat('0', 64) WHERE line_number = 2"
    )
    assert reconcile(path, backend, mode).mismatched_rows == 1


@pytest.mark.parametrize(
    "change",
    [
        "raw_line = encode(left(decode(raw_line), 2))",
        "raw_line = raw_line || '\\x0D'::BLOB",
        "raw_line = NULL",
        "reasons = reasons[2:]",
        "reasons = list_append(reasons, 'out_of_range:event_type')",
    ],
)
def test_an_altered_rejection_is_mismatched(stored_on, change: str, mode: str) -> None:
    # The rejected row is the only copy of a bad line: its text and reasons must be the file's.
    path, backend = stored_on
    backend.corrupt(path.name, f"UPDATE rejected_events SET {change} WHERE line_number = 10")
    report = reconcile(path, backend, mode)
    assert (report.missing_rows, report.unexpected_rows, report.mismatched_rows) == (0, 0, 1)
    assert report.samples["mismatched"] == [10]


def test_an_extra_row_is_unexpected(stored_on, mode: str) -> None:
    path, backend = stored_on
    backend.corrupt(
        path.name,
        "INSERT INTO events SELECT * REPLACE (99 AS line_number) FROM events LIMIT 1",
        "INSERT INTO events SELECT * FROM events WHERE line_number = 1",
    )
    report = reconcile(path, backend, mode)
    assert not report.passed
    assert report.unexpected_rows == 2
    assert report.samples["unexpected"] == [1, 99]


def test_rows_outside_the_file_are_sampled_lowest_first(stored_on, mode: str) -> None:
    # Twelve rows whose line numbers the 11-line file does not have, in both tables: every one
    # counts, and the sample holds the ten lowest, in order, whichever table they sit in.
    path, backend = stored_on
    backend.corrupt(
        path.name,
        "INSERT INTO events SELECT * REPLACE (line_number + 100 AS line_number) FROM events "
        "WHERE line_number <= 6",
        "INSERT INTO rejected_events SELECT * REPLACE (-line_number AS line_number) "
        "FROM rejected_events",
        "INSERT INTO rejected_events SELECT * REPLACE (line_number + 200 AS line_number) "
        "FROM rejected_events WHERE line_number > 0",
    )
    outside = [-11, -10, -9, 101, 102, 103, 104, 105, 106, 209, 210, 211]
    report = reconcile(path, backend, mode)
    assert not report.passed
    assert report.unexpected_rows == len(outside)
    assert report.samples["unexpected"] == outside[:10]


def test_an_event_passed_off_as_a_duplicate_is_missing(stored_on, mode: str) -> None:
    # Line 5 has no twin: moved to rejected_events as a duplicate, its event is stored nowhere.
    path, backend = stored_on
    # The moved row is faithful in every other way (its bytes, digest and hash are the line's),
    # so the claim it makes is all that is wrong.
    backend.corrupt(
        path.name,
        "INSERT INTO rejected_events SELECT source_file, line_number, $raw, ['duplicate_event'], "
        "ingested_at, run_id, line_digest, event_hash FROM events WHERE line_number = 5",
        "DELETE FROM events WHERE line_number = 5",
        params={"raw": LINES[4].encode()},
    )
    report = reconcile(path, backend, mode)
    assert (report.missing_rows, report.unexpected_rows, report.mismatched_rows) == (1, 0, 0)
    assert report.samples["missing"] == [5]
    assert report.lines_total == report.valid + report.rejected + report.duplicates


def test_a_duplicate_whose_earlier_line_was_deleted_is_missing_too(stored_on, mode: str) -> None:
    # Line 11 repeats line 3: without line 3's event, neither line's event is stored.
    path, backend = stored_on
    backend.corrupt(path.name, "DELETE FROM events WHERE line_number = 3")
    report = reconcile(path, backend, mode)
    assert (report.missing_rows, report.unexpected_rows, report.mismatched_rows) == (2, 0, 0)
    assert report.samples["missing"] == [3, 11]


def test_a_duplicate_of_another_file_holds_while_that_file_holds_its_event(
    tmp_path: Path, backend: Backend, mode: str
) -> None:
    first = write_lines(tmp_path / "a.jsonl", [event_line(1), event_line(2)])
    second = write_lines(tmp_path / "b.jsonl", [event_line(2), event_line(3)])
    con = backend.store
    ingest_file(first, con, run_id="r")
    ingest_file(second, con, run_id="r")
    report = reconcile(second, backend, mode)
    assert report.passed and report.duplicates == 1
    # a.jsonl lands again without that event: b.jsonl's line 1 is now stored nowhere.
    write_lines(first, [event_line(1)])
    ingest_file(first, con, run_id="r2")
    orphaned = reconcile(second, backend, mode)
    assert not orphaned.passed
    assert orphaned.missing_rows == 1 and orphaned.samples["missing"] == [1]


def test_of_two_duplicates_of_another_file_only_the_orphaned_one_is_missing(
    tmp_path: Path, backend: Backend, mode: str
) -> None:
    """The other file still proves one of them: the count and the sample name only the other."""
    first = write_lines(tmp_path / "a.jsonl", [event_line(1), event_line(2), event_line(3)])
    second = write_lines(tmp_path / "b.jsonl", [event_line(2), event_line(3), event_line(4)])
    con = backend.store
    ingest_file(first, con, run_id="r")
    ingest_file(second, con, run_id="r")
    assert reconcile(second, backend, mode).duplicates == 2
    write_lines(first, [event_line(1), event_line(2)])
    ingest_file(first, con, run_id="r2")
    orphaned = reconcile(second, backend, mode)
    assert (orphaned.missing_rows, orphaned.unexpected_rows) == (1, 0)
    assert orphaned.samples["missing"] == [2]


def test_a_lost_rejection_is_missing(stored_on, mode: str) -> None:
    path, backend = stored_on
    backend.corrupt(path.name, "DELETE FROM rejected_events WHERE line_number = 10")
    report = reconcile(path, backend, mode)
    assert not report.passed and report.missing_rows == 1


def test_a_changed_file_no_longer_reconciles(stored, mode: str) -> None:
    path, con = stored
    write_lines(path, [*LINES, event_line(50)])
    report = reconcile(path, con, mode)
    assert not report.passed and report.missing_rows == 1


def test_reconciling_twice_on_one_connection_leaves_it_usable(stored, mode: str) -> None:
    """duckdb 2.0 keeps a half-read result open after `fetchone()`, and `register` then refuses
    the connection: reconciliation must hand the connection back fully read."""
    path, con = stored
    assert reconcile(path, con, mode).passed
    assert reconcile(path, con, mode).passed


def test_other_partitions_do_not_count_even_with_a_shared_name_prefix(
    tmp_path: Path, backend: Backend, mode: str
) -> None:
    """Landed files share long name prefixes (DuckDB compares only a string's first 8 bytes in
    its zone maps) and every file starts at line 1: a neighbour's rows, altered or extra, must
    not leak into this partition's verdict, and this partition's drift must still be found."""
    mine = write_lines(tmp_path / "events-2026-11-24-0001.jsonl", LINES)
    theirs = write_lines(
        tmp_path / "events-2026-11-24-0002.jsonl", [event_line(i) for i in range(100, 120)]
    )
    ingest_file(mine, backend.store, run_id="r", chunk_bytes=512)
    ingest_file(theirs, backend.store, run_id="r", chunk_bytes=512)
    backend.corrupt(
        theirs.name,
        "UPDATE events SET phone_number = '0000000000' "
        "WHERE source_file = 'events-2026-11-24-0002.jsonl' AND line_number = 2",
        "INSERT INTO events SELECT * REPLACE (500 AS line_number) FROM events "
        "WHERE source_file = 'events-2026-11-24-0002.jsonl' AND line_number = 3",
    )
    report = reconcile(mine, backend, mode)
    assert report.passed
    assert (report.valid, report.rejected, report.duplicates) == (8, 2, 1)
    backend.corrupt(
        mine.name,
        "DELETE FROM events WHERE source_file = 'events-2026-11-24-0001.jsonl' AND line_number = 2",
    )
    drifted = reconcile(mine, backend, mode)
    assert (drifted.missing_rows, drifted.unexpected_rows, drifted.mismatched_rows) == (1, 0, 0)
    neighbour = reconcile(theirs, backend, mode)
    assert (neighbour.mismatched_rows, neighbour.unexpected_rows) == (1, 1)
    if backend.name == "duckdb":  # the warehouse's own connection, reconciled on three times
        temporary = backend.rows(mine.name, "SELECT count(*) FROM duckdb_tables() WHERE temporary")
        assert temporary == [(0,)]
