"""The search behind the `unique_event_hash` check finds a hash stored twice, in one file or
across files, through the writer's key index where it can be trusted and from the other side
where it cannot."""

from __future__ import annotations

from pathlib import Path

import pytest

from event_platform.ingest.ingestion import ingest_file
from event_platform.store.connection import connect
from event_platform.store.uniqueness import repeated_hashes
from event_platform_tests.conftest import event_line, write_lines

KEY = "('0x' || left(event_hash, 16))::UBIGINT"


@pytest.fixture
def two_files(tmp_path: Path):
    a = write_lines(tmp_path / "a.jsonl", [event_line(i) for i in range(10)])
    b = write_lines(tmp_path / "b.jsonl", [event_line(i) for i in range(10, 20)])
    with connect(tmp_path / "w.duckdb") as con:
        ingest_file(a, con, run_id="r")
        ingest_file(b, con, run_id="r")
        yield con


def copy_event(con, line: int, *, to: str, as_line: int, indexed: bool) -> None:
    """Store a's event of `line` again in file `to`, with or without its index entry."""
    con.execute(
        "INSERT INTO events SELECT * REPLACE ($to AS source_file, $as_line AS line_number) "
        "FROM events WHERE source_file = 'a.jsonl' AND line_number = $line",
        {"to": to, "as_line": as_line, "line": line},
    )
    if indexed:
        con.execute(
            f"INSERT INTO event_hash_keys SELECT $to, {KEY} FROM events "
            "WHERE source_file = 'a.jsonl' AND line_number = $line",
            {"to": to, "line": line},
        )


def summary(con, source_file: str) -> tuple[int, int, int]:
    found = repeated_hashes(con, source_file)
    assert len(found.sample) == found.repeated
    return found.repeated, found.index_mismatches, found.other_files


def test_distinct_files_have_no_repeats_and_leave_no_working_table(two_files) -> None:
    assert summary(two_files, "a.jsonl") == (0, 0, 0)
    assert summary(two_files, "b.jsonl") == (0, 0, 0)
    temporary = "SELECT count(*) FROM duckdb_tables() WHERE temporary"
    assert two_files.execute(temporary).fetchall() == [(0,)]


def test_a_repeat_across_files_is_found_from_both_sides(two_files) -> None:
    # As a writer that missed a duplicate would leave it: in events and in the index.
    copy_event(two_files, 2, to="b.jsonl", as_line=99, indexed=True)
    assert summary(two_files, "a.jsonl") == (1, 0, 1)
    assert summary(two_files, "b.jsonl") == (1, 0, 1)
    [expected] = two_files.execute(
        "SELECT event_hash FROM events WHERE source_file = 'a.jsonl' AND line_number = 2"
    ).fetchone()
    assert repeated_hashes(two_files, "a.jsonl").sample == [expected]


def test_a_row_added_behind_the_writers_back_is_found_from_its_own_file(two_files) -> None:
    copy_event(two_files, 3, to="b.jsonl", as_line=98, indexed=False)
    # a's search goes through the index, which does not know the row ...
    assert summary(two_files, "a.jsonl") == (0, 0, 0)
    # ... b's compares its own events, finds the repeat, and flags its index as incomplete.
    assert summary(two_files, "b.jsonl") == (1, 1, 1)


def test_a_repeat_within_one_file_is_found_without_the_index(two_files) -> None:
    copy_event(two_files, 4, to="a.jsonl", as_line=97, indexed=False)
    assert summary(two_files, "a.jsonl") == (1, 1, 0)


def test_a_lost_index_entry_fails_the_search(two_files) -> None:
    two_files.execute(
        f"DELETE FROM event_hash_keys WHERE source_file = 'b.jsonl' AND hash_key = "
        f"(SELECT {KEY} FROM events WHERE source_file = 'b.jsonl' AND line_number = 5)"
    )
    assert summary(two_files, "b.jsonl") == (0, 1, 0)
