"""The store: atomic replacement of a partition, duplicates, nothing lost.

Tests taking `backend` run once on each warehouse backend (the DuckDB file and Iceberg, see
event_platform_tests/iceberg_catalog.py); the others test the DuckDB writer's own mechanics.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pytest

from event_platform.contract import EVENTS_CONTRACT
from event_platform.generator import generate_file
from event_platform.ingest import hashing, ingestion
from event_platform.ingest.ingestion import ingest_file
from event_platform.reconcile import reconcile_partition
from event_platform.store import writer
from event_platform.store.arrow import arrow_view
from event_platform.store.connection import connect
from event_platform.store.schema import TABLES, table_schema
from event_platform.store.writer import PartitionWriter
from event_platform_tests.conftest import event_line, write_lines
from event_platform_tests.iceberg_catalog import Backend


def counts(con: duckdb.DuckDBPyConnection | Backend, source_file: str) -> tuple[int, int, int]:
    if isinstance(con, Backend):
        with con.read(source_file) as read:
            return counts(read, source_file)
    # fetchall: after fetchone, duckdb 2.0 refuses a later `register` on this connection.
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


def _never_reread(late):
    raise AssertionError("no line should need its text read again")


@pytest.fixture
def con(tmp_path: Path):
    with connect(tmp_path / "warehouse.duckdb") as connection:
        yield connection


def test_tables_exist_with_the_documented_schema(con) -> None:
    for table, columns in TABLES.items():
        assert table_schema(con, table) == columns
    assert con.execute("SELECT count(*) FROM events").fetchone() == (0,)


def test_every_line_lands_in_exactly_one_place(tmp_path: Path, backend: Backend) -> None:
    path = write_lines(tmp_path / "a.jsonl", [event_line(1), "", event_line(2), event_line(1)])
    result = ingest_file(path, backend.store, run_id="run-1")
    assert (result.lines, result.stored, result.rejected, result.duplicates) == (4, 2, 1, 1)
    assert counts(backend, "a.jsonl") == (2, 1, 1)
    rows = backend.rows(
        "a.jsonl", "SELECT line_number, reasons FROM rejected_events ORDER BY line_number"
    )
    assert rows == [(2, ["empty_line"]), (4, ["duplicate_event"])]
    assert result.reason_counts == {"empty_line": 1, "duplicate_event": 1}


def test_rerun_replaces_the_partition_and_is_not_a_duplicate_of_itself(
    tmp_path: Path, backend: Backend
) -> None:
    path = write_lines(tmp_path / "a.jsonl", [event_line(1), event_line(2), "x"])
    ingest_file(path, backend.store, run_id="run-1")
    again = ingest_file(path, backend.store, run_id="run-2")
    assert (again.stored, again.rejected, again.duplicates) == (2, 1, 0)
    assert counts(backend, "a.jsonl") == (2, 1, 0)
    assert backend.rows("a.jsonl", "SELECT DISTINCT run_id FROM events") == [("run-2",)]
    assert backend.rows("a.jsonl", "SELECT run_id FROM ingestions") == [("run-2",)]


def test_an_event_stored_from_another_file_is_a_duplicate(tmp_path: Path, backend: Backend) -> None:
    first = write_lines(tmp_path / "a.jsonl", [event_line(1), event_line(2)])
    second = write_lines(tmp_path / "b.jsonl", [event_line(2), event_line(3)])
    ingest_file(first, backend.store, run_id="r")
    result = ingest_file(second, backend.store, run_id="r")
    assert (result.stored, result.duplicates) == (1, 1)
    with backend.whole() as con:
        stored = con.execute("SELECT count(DISTINCT event_hash), count(*) FROM events").fetchone()
    assert stored == (3, 3)
    with backend.read("b.jsonl") as con:
        assert reconcile_partition(second, con, run_id="check").passed


def test_a_file_landed_again_under_another_name_is_all_duplicates_in_bounded_memory(
    tmp_path: Path, open_backend
) -> None:
    """The same content landed under a second name: every valid line is a duplicate, which the
    writer settles after the last chunk and reconciliation proves. Settled by one statement
    holding several joins, this failed with DuckDB's out-of-memory error under a 32 MB cap
    (1M lines under 256 MB)."""
    first = tmp_path / "a.jsonl"
    truth = generate_file(first, 100_000, seed=3)
    second = tmp_path / "b.jsonl"
    second.write_bytes(first.read_bytes())
    with open_backend(memory_limit="32MB") as backend:
        ingest_file(first, backend.store, run_id="a")
        result = ingest_file(second, backend.store, run_id="b")
        assert (result.stored, result.duplicates) == (0, truth.valid)
        assert counts(backend, "b.jsonl") == (0, truth.lines - truth.valid, truth.valid)
        with backend.read("b.jsonl") as con:
            report = reconcile_partition(second, con, run_id="check")
    assert report.passed and report.duplicates == truth.valid


def test_a_file_landed_again_under_another_name_is_all_duplicates(
    tmp_path: Path, backend: Backend
) -> None:
    """As above, under the default memory cap, which the Iceberg settle fits."""
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


@pytest.mark.parametrize("delete_batch_lines", [writer.DELETE_BATCH_LINES, 10, 1])
def test_duplicates_of_other_files_keep_their_own_text_from_any_chunk(
    tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch, delete_batch_lines: int
) -> None:
    """Found after the last chunk, such lines leave `events` for `rejected_events` with the bytes
    they had in this file (not the other file's, carriage return included), and
    reconciliation still balances; whether they are removed from `events` in one range of
    lines or many."""
    monkeypatch.setattr(writer, "DELETE_BATCH_LINES", delete_batch_lines)

    ingest_file(
        write_lines(tmp_path / "a.jsonl", [event_line(i) for i in range(3)]),
        backend.store,
        run_id="a",
    )
    respelled = '{"data": {"phone_number": "0600000002", "user_email": "user2@example.com"},  ' + (
        '"processing_date": "2019-01-04", "event_type": 7, "event_time": "2019-01-04 05:07:26"}'
    )
    lines = [event_line(0), *[event_line(i) for i in range(100, 160)], respelled, event_line(0)]
    second = write_lines(tmp_path / "b.jsonl", lines, newline="\r\n")
    result = ingest_file(second, backend.store, run_id="b", chunk_bytes=1_000, workers=2)

    assert (result.stored, result.rejected, result.duplicates) == (60, 0, 3)
    assert counts(backend, "b.jsonl") == (60, 0, 3)
    with backend.read("b.jsonl") as con:
        duplicates = con.execute(
            "SELECT line_number, raw_line FROM rejected_events WHERE source_file = 'b.jsonl' "
            "ORDER BY line_number"
        ).fetchall()
        keys = con.execute("SELECT count(*) FROM event_hash_keys WHERE source_file = 'b.jsonl'")
        assert keys.fetchall() == [(60,)]
        report = reconcile_partition(second, con, run_id="check", chunk_bytes=1_000)
    assert duplicates == [
        (number, f"{line}\r".encode())
        for number, line in ((1, event_line(0)), (62, respelled), (63, event_line(0)))
    ]
    assert report.passed, report


def test_duplicates_of_other_files_are_moved_one_range_of_lines_at_a_time(
    tmp_path: Path, con, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each range's line numbers are fetched, and its rows deleted, only when the re-read of
    the file reaches it: holding every late line number of a large file at once would grow
    memory with the file (78 MB at 10M lines)."""
    monkeypatch.setattr(writer, "DELETE_BATCH_LINES", 10)
    lines = [event_line(i) for i in range(30)]
    told: list[str] = []
    ingest_file(write_lines(tmp_path / "a.jsonl", lines), con, run_id="a", log=told.append)
    assert told == []  # nothing to move, nothing said
    second = write_lines(tmp_path / "b.jsonl", lines)
    asked: list[tuple[list[int], int]] = []
    read_again = ingestion.lines_again

    def watched(path: Path, wanted, sha256: str, chunk_bytes: int, max_line_bytes: int):
        def batches():
            for batch in wanted:
                [(still_stored,)] = con.execute(
                    "SELECT count(*) FROM events WHERE source_file = 'b.jsonl'"
                ).fetchall()
                asked.append((batch.to_list(), still_stored))
                yield batch

        return read_again(path, batches(), sha256, chunk_bytes, max_line_bytes)

    monkeypatch.setattr(ingestion, "lines_again", watched)
    result = ingest_file(second, con, run_id="b", chunk_bytes=500, log=told.append)

    assert (result.stored, result.duplicates) == (0, 30)
    assert told == [
        "b.jsonl: 30 stored lines repeat an earlier line of the file or an event of 1 other"
        " file(s); moving them to rejected_events"
    ]
    assert asked == [
        (list(range(1, 11)), 20),
        (list(range(11, 21)), 10),
        (list(range(21, 31)), 0),
    ]
    assert counts(con, "b.jsonl") == (0, 0, 30)


def test_a_line_repeating_an_earlier_chunk_is_a_duplicate(tmp_path: Path, backend: Backend) -> None:
    """Decided chunk by chunk against this run's own rows, whatever the machine's time zone."""
    lines = [event_line(0), *[event_line(i) for i in range(100, 160)], event_line(0)]
    path = write_lines(tmp_path / "b.jsonl", lines)
    result = ingest_file(path, backend.store, run_id="b", chunk_bytes=1_000, workers=1)
    assert (result.stored, result.duplicates) == (61, 1)
    assert backend.rows(
        "b.jsonl", "SELECT line_number FROM rejected_events WHERE source_file = 'b.jsonl'"
    ) == [(62,)]


NEVER_PROBE = -1  # as `writer.PROBE_KEYS_LIMIT`: no chunk probes, the settle finds every repeat


@pytest.mark.parametrize("probe_limit", [writer.PROBE_KEYS_LIMIT, NEVER_PROBE])
def test_a_file_that_repeats_itself_is_settled_in_bounded_memory(
    tmp_path: Path, open_backend, monkeypatch: pytest.MonkeyPatch, probe_limit: int
) -> None:
    """The same lines twice in one file: the second copy repeats earlier chunks line by line.
    Found by each chunk's probe, or, past the probe's limit, after the last chunk and moved
    with their own text; either way under a 32 MB cap."""
    monkeypatch.setattr(writer, "PROBE_KEYS_LIMIT", probe_limit)
    half = tmp_path / "half.jsonl"
    truth = generate_file(half, 50_000, seed=5)
    path = tmp_path / "twice.jsonl"
    path.write_bytes(half.read_bytes() * 2)
    told: list[str] = []
    with open_backend(memory_limit="32MB", name="w") as backend:
        result = ingest_file(
            path, backend.store, run_id="t", chunk_bytes=1_000_000, log=told.append
        )
        assert (result.stored, result.duplicates) == (truth.valid, truth.valid)
        assert counts(backend, "twice.jsonl") == (truth.valid, 2 * truth.invalid, truth.valid)
    # Reconciliation's classifying query needs more than 32 MB for a 16 MB chunk: the cap this
    # test holds is the writer's.
    with open_backend(name="w") as backend, backend.read("twice.jsonl") as con:
        [(first_copy,)] = con.execute(
            "SELECT count(*) FROM events WHERE line_number > $n", {"n": truth.lines}
        ).fetchall()
        assert first_copy == 0
        [(keys,)] = con.execute("SELECT count(*) FROM event_hash_keys").fetchall()
        assert keys == truth.valid
        report = reconcile_partition(path, con, run_id="check")
    assert report.passed, report
    moved = [
        f"twice.jsonl: {truth.valid:,} stored lines repeat an earlier line of the file or an "
        "event of 0 other file(s); moving them to rejected_events"
    ]
    assert told == (moved if probe_limit == NEVER_PROBE else [])


@pytest.mark.parametrize("probe_limit", [writer.PROBE_KEYS_LIMIT, NEVER_PROBE])
def test_a_shared_key_within_a_file_only_nominates(
    tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch, probe_limit: int
) -> None:
    """Every line given the same 64-bit key: only the full hashes make a duplicate."""
    monkeypatch.setattr(writer, "PROBE_KEYS_LIMIT", probe_limit)
    monkeypatch.setattr(hashing, "HASH_KEY", pl.lit(7, dtype=pl.UInt64))
    lines = [event_line(i) for i in range(40)] + [event_line(3), event_line(39)]
    path = write_lines(tmp_path / "k.jsonl", lines)
    result = ingest_file(path, backend.store, run_id="k", chunk_bytes=500)
    assert (result.stored, result.duplicates) == (40, 2)
    late = backend.rows(
        "k.jsonl",
        "SELECT line_number FROM rejected_events WHERE source_file = 'k.jsonl' ORDER BY 1",
    )
    assert late == [(41,), (42,)]


def test_repeats_on_both_sides_of_the_probe_limit_are_all_found(
    tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks probe until the file has stored 10 lines; the settle finds the rest, including a
    line past the limit that repeats one from before it."""
    monkeypatch.setattr(writer, "PROBE_KEYS_LIMIT", 10)
    events = [event_line(i) for i in range(40)]
    lines = [*events[:5], events[2], *events[5:], events[1], events[30]]
    path = write_lines(tmp_path / "p.jsonl", lines)
    told: list[str] = []
    result = ingest_file(path, backend.store, run_id="p", chunk_bytes=500, log=told.append)
    assert (result.stored, result.duplicates) == (40, 3)
    assert told == [
        "p.jsonl: 2 stored lines repeat an earlier line of the file or an event of 0 other "
        "file(s); moving them to rejected_events"
    ]
    with backend.read("p.jsonl") as con:
        late = con.execute(
            "SELECT line_number, raw_line FROM rejected_events WHERE source_file = 'p.jsonl' "
            "ORDER BY 1"
        ).fetchall()
        assert reconcile_partition(path, con, run_id="check", chunk_bytes=500).passed
    assert late == [(6, events[2].encode()), (42, events[1].encode()), (43, events[30].encode())]


def test_ingestion_times_are_utc_whatever_the_session_time_zone(tmp_path: Path, con) -> None:
    """Metrics and checks compare them with UTC clocks."""
    con.execute("SET TimeZone = 'America/New_York'")
    path = write_lines(tmp_path / "a.jsonl", [event_line(1), '{"event_type": 99}'])
    before = datetime.now(UTC).replace(tzinfo=None)
    ingest_file(path, con, run_id="r")
    after = datetime.now(UTC).replace(tzinfo=None)
    [(ingested, rejected)] = con.execute(
        "SELECT (SELECT ingested_at FROM events), (SELECT rejected_at FROM rejected_events)"
    ).fetchall()
    assert before <= ingested <= after
    assert rejected == ingested


def test_a_file_changed_during_ingestion_stores_nothing(tmp_path: Path, backend: Backend) -> None:
    """Duplicates of other files are read again from the file; if its bytes moved meanwhile,
    the run fails with a clear error and the previous partition stays whole."""
    from event_platform.ingest.lines import FileChangedError

    con = backend.store
    ingest_file(write_lines(tmp_path / "a.jsonl", [event_line(1)]), con, run_id="a")
    second = write_lines(tmp_path / "b.jsonl", [event_line(2), event_line(3)])
    ingest_file(second, con, run_id="before")
    write_lines(second, [event_line(i) for i in range(1, 40)])

    def rewrite_after_last_chunk(lines_done: int, bytes_done: int) -> None:
        if lines_done == 39:
            write_lines(second, [event_line(i) for i in range(2, 41)])

    with pytest.raises(FileChangedError, match="changed while it was being ingested"):
        ingest_file(second, con, run_id="torn", chunk_bytes=500, progress=rewrite_after_last_chunk)
    assert counts(backend, "b.jsonl") == (2, 0, 0)
    with backend.read("b.jsonl") as read:
        assert read.execute(
            "SELECT DISTINCT run_id FROM events WHERE source_file = 'b.jsonl'"
        ).fetchall() == [("before",)]
        assert read.execute(
            "SELECT count(*) FROM event_hash_keys WHERE source_file = 'b.jsonl'"
        ).fetchall() == [(2,)]


def test_a_duplicate_line_rewritten_during_ingestion_is_a_clear_error(
    tmp_path: Path, backend: Backend
) -> None:
    """The line is read again for its bytes after the last chunk: it is not what was stored."""
    from event_platform.ingest.lines import FileChangedError

    con = backend.store
    ingest_file(write_lines(tmp_path / "a.jsonl", [event_line(1)]), con, run_id="a")
    second = write_lines(tmp_path / "b.jsonl", [event_line(1), event_line(2)])

    def break_the_duplicate_line(lines_done: int, bytes_done: int) -> None:
        second.write_bytes(b"\xff" + second.read_bytes()[1:])

    with pytest.raises(FileChangedError, match="changed while it was being ingested"):
        ingest_file(second, con, run_id="torn", progress=break_the_duplicate_line)
    assert counts(backend, "b.jsonl") == (0, 0, 0)


def test_a_new_version_of_a_file_replaces_the_old_rows(tmp_path: Path, backend: Backend) -> None:
    path = write_lines(tmp_path / "a.jsonl", [event_line(1), event_line(2), event_line(3)])
    ingest_file(path, backend.store, run_id="v1")
    write_lines(path, [event_line(4)])
    ingest_file(path, backend.store, run_id="v2")
    assert counts(backend, "a.jsonl") == (1, 0, 0)
    assert backend.rows("a.jsonl", "SELECT user_email FROM events") == [("user4@example.com",)]


def test_a_failure_mid_write_rolls_back_to_the_previous_partition(
    tmp_path: Path, backend: Backend
) -> None:
    path = write_lines(tmp_path / "a.jsonl", [event_line(1), event_line(2)])
    ingest_file(path, backend.store, run_id="good")
    writer = backend.warehouse.partition_writer(
        EVENTS_CONTRACT, "a.jsonl", "bad", datetime.now(UTC), reread=_never_reread
    )
    with pytest.raises(RuntimeError, match="crash"), writer:
        raise RuntimeError("crash after the delete, before any insert")
    assert counts(backend, "a.jsonl") == (2, 0, 0)
    assert backend.rows("a.jsonl", "SELECT DISTINCT run_id FROM events") == [("good",)]


def test_values_are_stored_with_their_types(tmp_path: Path, backend: Backend) -> None:
    path = write_lines(tmp_path / "a.jsonl", [event_line(5)])
    ingest_file(path, backend.store, run_id="r")
    [row] = backend.rows(
        "a.jsonl",
        "SELECT event_type, CAST(event_time AS VARCHAR), CAST(processing_date AS VARCHAR), "
        "user_email, phone_number, line_number, length(event_hash) FROM events",
    )
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


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_worker_count_changes_nothing_stored(tmp_path: Path, workers: int) -> None:
    """Chunks validated in parallel are written in file order: same rows, same duplicates."""
    lines = []
    for index in range(400):
        if index % 37 == 5:
            lines.append('{"event_type": 99}')
        else:  # every 7th line repeats one of the first 50: duplicates across chunks
            lines.append(event_line(index % 50 if index % 7 == 0 else index))
    path = write_lines(tmp_path / "f.jsonl", lines)

    def stored(workers: int, name: str) -> tuple[list, list]:
        with connect(tmp_path / f"{name}.duckdb") as con:
            ingest_file(path, con, run_id="r", chunk_bytes=700, workers=workers)
            events = con.execute(
                "SELECT event_hash, line_number FROM events ORDER BY line_number"
            ).fetchall()
            rejected = con.execute(
                "SELECT line_number, reasons FROM rejected_events ORDER BY line_number"
            ).fetchall()
        return events, rejected

    events, rejected = stored(workers, f"w{workers}")
    assert (events, rejected) == stored(1, f"reference{workers}")
    assert any(reasons == ["duplicate_event"] for _, reasons in rejected)
    assert len(events) + len(rejected) == 400


def test_a_stale_key_alone_never_makes_a_duplicate(tmp_path: Path, backend: Backend) -> None:
    """Keys only nominate candidates; the full hash in `events` decides."""
    ingest_file(write_lines(tmp_path / "a.jsonl", [event_line(1)]), backend.store, run_id="r1")
    backend.corrupt("a.jsonl", "DELETE FROM events")  # the key of event 1 stays behind
    result = ingest_file(
        write_lines(tmp_path / "b.jsonl", [event_line(1)]), backend.store, run_id="r2"
    )
    assert (result.stored, result.duplicates) == (1, 0)


def test_keys_follow_their_partition(tmp_path: Path, backend: Backend) -> None:
    path = write_lines(tmp_path / "a.jsonl", [event_line(i) for i in range(5)])
    for run in ("r1", "r2"):  # a re-run replaces the partition's keys, it does not add
        ingest_file(path, backend.store, run_id=run)
    with backend.read("a.jsonl") as con:
        keys = con.execute(
            "SELECT count(*), count(DISTINCT hash_key) FROM event_hash_keys "
            "WHERE source_file = 'a.jsonl'"
        ).fetchone()
        stored = con.execute(
            "SELECT count(*) FROM events e JOIN event_hash_keys k "
            "ON k.hash_key = ('0x' || left(e.event_hash, 16))::UBIGINT"
        ).fetchone()[0]
    assert keys == (5, 5)
    assert stored == 5


def test_a_write_failing_mid_file_rolls_back_and_stops_the_workers(
    tmp_path, monkeypatch, backend: Backend
):
    path = write_lines(tmp_path / "a.jsonl", [event_line(i) for i in range(300)])
    real_write = PartitionWriter.write
    calls = 0

    def fail_on_third_chunk(self, valid, rejected):
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError("disk full")
        real_write(self, valid, rejected)

    ingest_file(path, backend.store, run_id="good")
    monkeypatch.setattr(PartitionWriter, "write", fail_on_third_chunk)
    with pytest.raises(OSError, match="disk full"):
        ingest_file(path, backend.store, run_id="bad", chunk_bytes=2000, workers=2)
    runs = backend.rows("a.jsonl", "SELECT DISTINCT run_id FROM events")
    assert runs == [("good",)]  # the failed run left the previous partition whole
    assert counts(backend, "a.jsonl") == (300, 0, 0)
    assert not [t for t in threading.enumerate() if t.name.startswith("validate")]


def test_a_rerun_removes_only_its_own_rows_wherever_they_sit(
    tmp_path: Path, backend: Backend
) -> None:
    """Neighbours share a long name prefix, and one of the partition's rows sits after a
    neighbour's: the re-run still replaces all of its rows, in every table, and no other."""
    mine = write_lines(tmp_path / "events-2026-11-24-a.jsonl", [event_line(i) for i in range(6)])
    theirs = write_lines(
        tmp_path / "events-2026-11-24-b.jsonl", [event_line(i) for i in range(10, 14)] + ["x"]
    )
    ingest_file(mine, backend.store, run_id="r1", chunk_bytes=256)
    ingest_file(theirs, backend.store, run_id="r1", chunk_bytes=256)
    backend.corrupt(
        mine.name,
        "INSERT INTO events SELECT * REPLACE (99 AS line_number) FROM events "
        "WHERE source_file = 'events-2026-11-24-a.jsonl' AND line_number = 1",
    )
    write_lines(mine, [event_line(i) for i in range(3)] + ["", "{"])
    ingest_file(mine, backend.store, run_id="r2", chunk_bytes=256)
    assert counts(backend, "events-2026-11-24-a.jsonl") == (3, 2, 0)
    assert counts(backend, "events-2026-11-24-b.jsonl") == (4, 1, 0)
    keys = [
        backend.rows(
            name, "SELECT count(*) FROM event_hash_keys WHERE source_file = $f", {"f": name}
        )
        for name in (mine.name, theirs.name)
    ]
    assert keys == [[(3,)], [(4,)]]
    assert backend.rows(
        mine.name,
        "SELECT DISTINCT run_id FROM events WHERE source_file = 'events-2026-11-24-a.jsonl'",
    ) == [("r2",)]


def test_frames_cross_into_duckdb_as_string_views_with_their_values(con) -> None:
    """The writer hands DuckDB polars' own string views, not a `large_string` copy, and DuckDB
    reads them exactly: strings short enough to sit inline in the view and long ones, non-ASCII
    text, NULLs and lists of strings."""
    frame = pl.DataFrame(
        {
            "text": ["short", "a string longer than twelve bytes", "é 🙂 ünïcode", None],
            "reasons": [["wrong_type:data"], [], None, ["missing_field:data.user_email", "x"]],
        }
    )
    crossing = arrow_view(frame)
    assert crossing.schema.field("text").type == pa.string_view()
    assert crossing.schema.field("reasons").type.value_type == pa.string_view()
    con.execute("CREATE TEMP TABLE landed (n INTEGER, text VARCHAR, reasons VARCHAR[])")
    # `crossing` is read by DuckDB's replacement scan, as the writer's chunks are.
    con.execute("INSERT INTO landed SELECT row_number() OVER (), text, reasons FROM crossing")
    rows = con.execute("SELECT text, reasons FROM landed ORDER BY n").fetchall()
    assert rows == list(zip(frame["text"].to_list(), frame["reasons"].to_list(), strict=True))


def test_hash_email_and_phone_keep_their_chosen_compression_and_read_back_whole(
    tmp_path: Path,
) -> None:
    """`events` pins the compression of the columns whose values are nearly all distinct, where
    DuckDB's own choice costs the INSERT most (store/tables.py): the hash plain, email and
    phone zstd. The values read back unchanged."""
    with connect(tmp_path / "warehouse.duckdb") as con:
        con.execute(
            "INSERT INTO events (event_hash, user_email, phone_number, source_file) "
            "SELECT sha256(i::VARCHAR), sha256(i::VARCHAR), sha256(i::VARCHAR), "
            "sha256(i::VARCHAR) FROM range(20000) AS r(i)"
        )
        con.execute("CHECKPOINT")
        compression = dict(
            con.execute(
                "SELECT column_name, list(DISTINCT compression) FROM pragma_storage_info('events') "
                "WHERE column_name IN ('event_hash', 'user_email', 'phone_number', 'source_file') "
                "AND segment_type = 'VARCHAR' GROUP BY column_name"
            ).fetchall()
        )
        assert compression["event_hash"] == ["Uncompressed"]
        assert compression["user_email"] == ["ZSTD"]
        assert compression["phone_number"] == ["ZSTD"]
        # The same values in a column left to DuckDB get its own choice: the pin is what differs.
        assert not {"Uncompressed", "ZSTD"} & set(compression["source_file"])
        expected = sorted(hashlib.sha256(str(i).encode()).hexdigest() for i in range(20000))
        for column in ("event_hash", "user_email", "phone_number"):
            stored = con.execute(f"SELECT {column} FROM events ORDER BY {column}").fetchall()
            assert [value for (value,) in stored] == expected
        assert table_schema(con, "events")["event_hash"] == "VARCHAR"


@pytest.mark.parametrize("fails", ["", "python", "sql"], ids=["committed", "raised", "aborted"])
def test_the_writer_gives_the_connection_its_threads_back(tmp_path: Path, fails: str) -> None:
    """Chunks are written on one DuckDB thread; after the partition, committed or rolled back,
    the connection has the threads it had before. A statement that failed inside the
    transaction (which DuckDB aborts) is the error the caller sees, not the restore's."""
    path = write_lines(tmp_path / "t.jsonl", [event_line(i) for i in range(5)])

    with connect(tmp_path / "warehouse.duckdb") as con:
        con.execute("SET threads = 3")
        seen: list[int] = []

        def during() -> None:
            seen.extend(
                row[0] for row in con.execute("SELECT current_setting('threads')").fetchall()
            )
            if fails == "python":
                raise RuntimeError("stopped before commit")
            if fails == "sql":
                con.execute("SELECT * FROM no_such_table")

        if fails == "python":
            with pytest.raises(RuntimeError, match="stopped before commit"):
                ingest_file(path, con, run_id="r", before_commit=during)
        elif fails == "sql":
            with pytest.raises(duckdb.CatalogException, match="no_such_table"):
                ingest_file(path, con, run_id="r", before_commit=during)
        else:
            ingest_file(path, con, run_id="r", before_commit=during)
        assert seen == [1]
        assert con.execute("SELECT current_setting('threads')").fetchall() == [(3,)]
        assert counts(con, "t.jsonl")[0] == (0 if fails else 5)
