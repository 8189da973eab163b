"""The line ledger: digests as documented, each ledger class found, the sample drawn as recorded."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import xxhash
from hypothesis import example, given, settings
from hypothesis import strategies as st

from event_platform.cli.ingest import _reconcile_config
from event_platform.contract import EVENTS_CONTRACT
from event_platform.ingest.ingestion import ingest_file
from event_platform.ingest.lines import FileChangedError, FileDigest, read_line_chunks
from event_platform.reconcile import reconcile_partition
from event_platform.reconcile import sample as sample_module
from event_platform.reconcile.ledger import BLOCK_CHUNKS, LedgerFindings, check_ledger
from event_platform.reconcile.partition import _locate
from event_platform.reconcile.sample import draw, read_lines
from event_platform.settings import Settings, SettingsError
from event_platform.store.connection import connect
from event_platform_tests.conftest import event_line, write_lines

LINES = [event_line(i) for i in range(1, 9)] + ["", "{bad", event_line(3)]


@pytest.fixture
def stored(tmp_path: Path):
    path = write_lines(tmp_path / "a.jsonl", LINES)
    with connect(tmp_path / "w.duckdb") as con:
        ingest_file(path, con, run_id="r", chunk_bytes=512)
        yield path, con


def ledger_only(path: Path, con, **options):
    """The ledger check alone: no sample, so every finding is the ledger's."""
    return reconcile_partition(
        path, con, run_id="check", chunk_bytes=512, mode="ledger", sample_lines=0, **options
    )


def stored_digests(con) -> dict[int, int]:
    rows = con.execute(
        "SELECT line_number, line_digest FROM events UNION ALL "
        "SELECT line_number, line_digest FROM rejected_events"
    ).fetchall()
    return dict(rows)


def test_digests_are_xxh64_of_the_raw_line_bytes(tmp_path: Path) -> None:
    # The reference implementation, over each line's bytes without its newline: the byte-order
    # mark is not part of the first line, a carriage return is part of its line, invalid UTF-8
    # is digested as it is, an overlong line by the head that is kept.
    lines = [
        b"\xef\xbb\xbf" + event_line(1).encode(),
        event_line(2).encode() + b"\r",
        b"caf\xc3\xa9 \xff not json",
        b"",
        b"x" * 300,
        event_line(3).encode(),
        event_line(1).encode(),  # a duplicate of line 1
    ]
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\n".join(lines))  # no final newline
    kept = [lines[0][3:], *lines[1:4], lines[4][:200], *lines[5:]]
    with connect(tmp_path / "w.duckdb") as con:
        ingest_file(path, con, run_id="r", max_line_bytes=200)
        assert stored_digests(con) == {
            number: xxhash.xxh64_intdigest(line, seed=0)
            for number, line in enumerate(kept, start=1)
        }
        [(duplicate_hash, first_hash)] = con.execute(
            "SELECT r.event_hash, e.event_hash FROM rejected_events r, events e "
            "WHERE r.line_number = 7 AND e.line_number = 1"
        ).fetchall()
        assert duplicate_hash == first_hash
        report = reconcile_partition(path, con, run_id="c", max_line_bytes=200)
        assert report.passed and report.mode == "ledger" and report.sample_lines == 7


@pytest.mark.parametrize(
    ("content", "lines"),
    [
        (b"\xef\xbb\xbf", []),
        (b"\xef\xbb\xbf\xef\xbb\xbf{}\n", [b"\xef\xbb\xbf{}"]),
        (b"\xef\xbb\xbf\n\xef\xbb\xbf\n", [b"", b"\xef\xbb\xbf"]),
    ],
    ids=["only-the-mark", "mark-twice", "a-line-that-is-the-mark"],
)
def test_a_file_that_begins_with_marks_reconciles_in_both_modes(
    tmp_path: Path, content: bytes, lines: list[bytes]
) -> None:
    """One mark at the start is not part of the first line, to ingestion, the ledger and the
    sample's own reader alike; a second mark is the first line's bytes. The whole file is
    sampled, so the sample's reader is checked on every line."""
    path = tmp_path / "m.jsonl"
    path.write_bytes(content)
    with connect(tmp_path / "w.duckdb") as con:
        result = ingest_file(path, con, run_id="r")
        assert result.lines == len(lines) and result.stored == 0
        assert stored_digests(con) == {
            number: xxhash.xxh64_intdigest(line, seed=0)
            for number, line in enumerate(lines, start=1)
        }
        for mode in ("ledger", "full"):
            report = reconcile_partition(path, con, run_id=f"c-{mode}", mode=mode)
            assert report.passed and report.mode == mode
            assert report.lines_total == len(lines)
            if mode == "ledger":
                assert report.sample_lines == len(lines)


def test_duplicates_of_another_file_keep_their_digest_and_hash(tmp_path: Path) -> None:
    first = write_lines(tmp_path / "a.jsonl", [event_line(i) for i in range(1, 4)])
    second = write_lines(tmp_path / "b.jsonl", [event_line(i) for i in range(2, 6)])
    with connect(tmp_path / "w.duckdb") as con:
        ingest_file(first, con, run_id="r")
        ingest_file(second, con, run_id="r")
        rows = con.execute(
            "SELECT r.line_number, r.line_digest, r.event_hash = e.event_hash "
            "FROM rejected_events r JOIN events e USING (event_hash) "
            "WHERE r.source_file = 'b.jsonl' ORDER BY 1"
        ).fetchall()
        expected = [event_line(i).encode() for i in (2, 3)]
        assert rows == [
            (number, xxhash.xxh64_intdigest(line), True)
            for number, line in enumerate(expected, start=1)
        ]
        assert ledger_only(second, con).passed


def test_a_faithful_store_passes_on_the_tally_alone(stored) -> None:
    path, con = stored
    report = ledger_only(path, con)
    assert report.passed and report.mode == "ledger"
    assert report.details == dict.fromkeys(
        ("missing", "doubled", "altered", "mismatched", "sample_mismatched", "unexpected"), 0
    )


@pytest.mark.parametrize(
    ("corruption", "found", "lines"),
    [
        ("DELETE FROM events WHERE line_number = 4", "missing", [4]),
        ("INSERT INTO events SELECT * FROM events WHERE line_number = 2", "doubled", [2]),
        ("UPDATE events SET line_digest = line_digest + 1 WHERE line_number = 6", "altered", [6]),
        ("UPDATE rejected_events SET line_digest = NULL WHERE line_number = 9", "altered", [9]),
        # Two events' line numbers swapped: each row now sits at a line whose bytes it is not.
        (
            "UPDATE events SET line_number = CASE line_number WHEN 2 THEN 3 ELSE 2 END "
            "WHERE line_number IN (2, 3)",
            "altered",
            [2, 3],
        ),
        ("UPDATE events SET user_email = 'x@y.org' WHERE line_number = 5", "mismatched", [5]),
        ("UPDATE rejected_events SET raw_line = 'x' WHERE line_number = 10", "mismatched", [10]),
        (
            "INSERT INTO events SELECT * REPLACE (40 AS line_number) FROM events LIMIT 1",
            "unexpected",
            [40],
        ),
    ],
)
def test_each_ledger_class_is_found(stored, corruption: str, found: str, lines: list[int]) -> None:
    path, con = stored
    con.execute(corruption)
    report = ledger_only(path, con)
    assert not report.passed
    assert {name: n for name, n in report.details.items() if n} == {found: len(lines)}
    verdict = {"doubled": "unexpected", "altered": "mismatched"}.get(found, found)
    assert report.samples == {verdict: lines}


def ledger_findings(path: Path, con) -> LedgerFindings:
    con.execute("BEGIN TRANSACTION")
    try:
        _version, partition = _locate(con, path.name)
        return check_ledger(
            path, con, partition, FileDigest(),
            contract=EVENTS_CONTRACT, chunk_bytes=512, max_line_bytes=1 << 20,
        )  # fmt: skip
    finally:
        con.execute("ROLLBACK")


def test_only_a_store_that_fails_the_totals_is_read_again_and_only_its_bad_chunk_classified(
    stored,
) -> None:
    """The events are tallied once for the whole file; a difference sends the check back over
    the file chunk by chunk, and only the chunk holding the bad row is classified."""
    path, con = stored
    sound = ledger_findings(path, con)
    blocks = len(list(read_line_chunks(path, chunk_bytes=BLOCK_CHUNKS * 512)))
    assert sound.chunks == blocks > 1 and sound.chunks_classified == 0
    con.execute("UPDATE events SET user_email = 'x@y.org' WHERE line_number = 5")
    corrupt = ledger_findings(path, con)
    assert corrupt.chunks_classified == 1
    assert corrupt.counts["mismatched"] == 1 and corrupt.samples == {"mismatched": [5]}


def test_a_file_that_changes_before_it_is_read_again_stops_the_check(stored) -> None:
    path, con = stored
    con.execute("DELETE FROM events WHERE line_number = 4")
    original = path.read_bytes()

    def rewrite_at_the_end(lines_done: int, _bytes_done: int) -> None:
        if lines_done == len(LINES):
            path.write_bytes(original.replace(b"example.com", b"example.org"))

    with pytest.raises(FileChangedError, match="changed while it was being reconciled"):
        ledger_only(path, con, progress=rewrite_at_the_end)


def test_a_shifted_partition_is_altered_line_by_line(stored) -> None:
    # Every event one line down: the rows no longer match their lines, and one row falls
    # outside the file or onto a rejected line's number.
    path, con = stored
    con.execute("UPDATE events SET line_number = line_number + 1")
    report = ledger_only(path, con)
    assert not report.passed and report.details["altered"] > 0


def test_the_sample_is_drawn_from_the_recorded_seed(tmp_path: Path) -> None:
    lines = [event_line(i) for i in range(1, 301)]
    path = write_lines(tmp_path / "s.jsonl", lines)
    assert draw(300, 20, 7) == draw(300, 20, 7) != draw(300, 20, 8)
    assert len(set(draw(300, 20, 7))) == 20 and draw(5, 20, 7) == [1, 2, 3, 4, 5]
    drawn = draw(300, 20, 7)
    outside = next(n for n in range(1, 301) if n not in drawn)
    with connect(tmp_path / "w.duckdb") as con:
        ingest_file(path, con, run_id="r")
        fresh = reconcile_partition(path, con, run_id="c", sample_lines=20)
        assert fresh.passed and fresh.sample_lines == 20 and fresh.sample_seed is not None
        # A stored value the ledger cannot see (the hash is changed with it) on a drawn line
        # is found by the sample; on a line the draw leaves out, it is not.
        tamper = (
            "UPDATE events SET event_type = 1, event_hash = sha256(concat_ws(chr(31), '1', "
            "CAST(event_time AS VARCHAR), CAST(processing_date AS VARCHAR), user_email, "
            "phone_number)) WHERE line_number = $n"
        )
        con.execute(tamper, {"n": drawn[0]})
        con.execute(tamper, {"n": outside})
        report = reconcile_partition(path, con, run_id="c", sample_lines=20, sample_seed=7)
        assert report.sample_seed == 7 and report.sample_lines == 20
        assert report.details["mismatched"] == 0 and report.details["sample_mismatched"] == 1
        assert report.mismatched_rows == 1 and report.samples["mismatched"] == [drawn[0]]
        again = reconcile_partition(path, con, run_id="c", sample_lines=20, sample_seed=7)
        assert again.samples == report.samples


def test_a_flagged_line_is_sampled_but_not_counted_twice(tmp_path: Path) -> None:
    lines = [event_line(i) for i in range(1, 301)]
    path = write_lines(tmp_path / "s.jsonl", lines)
    drawn = draw(300, 20, 7)
    outside = next(n for n in range(1, 301) if n not in drawn)
    with connect(tmp_path / "w.duckdb") as con:
        ingest_file(path, con, run_id="r")
        con.execute(
            "UPDATE events SET line_digest = 0 WHERE line_number IN ($a, $b)",
            {"a": drawn[0], "b": outside},
        )
        report = reconcile_partition(path, con, run_id="c", sample_lines=20, sample_seed=7)
        assert report.details["altered"] == 2 and report.details["sample_mismatched"] == 0
        assert report.mismatched_rows == 2
        # The draw and the flagged line that it left out.
        assert report.sample_lines == 21


def test_a_partition_stored_before_digests_is_reconciled_in_full(stored) -> None:
    path, con = stored
    con.execute("UPDATE events SET line_digest = NULL")
    con.execute("UPDATE rejected_events SET line_digest = NULL, event_hash = NULL")
    report = ledger_only(path, con)
    assert report.passed and report.mode == "full" and report.sample_seed is None
    assert "without line digests" in (report.note or "")


def test_the_independent_reader_finds_the_lines_the_reader_splits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Reads of 7 bytes: lines cross reads, and a long line spans many.
    monkeypatch.setattr(sample_module, "READ_BYTES", 7)
    content = b"\xef\xbb\xbfab\r\n\n" + b"y" * 40 + b"\nlast"
    path = tmp_path / "r.jsonl"
    path.write_bytes(content)
    expected = {}
    for chunk in read_line_chunks(path, max_line_bytes=10):
        for offset, raw in enumerate(chunk.raw.to_pylist()):
            expected[chunk.first_line_number + offset] = raw
    found = read_lines(path, [1, 2, 3, 4, 9], max_line_bytes=10)
    # The overlong line keeps one byte more than the reader, which shows that it is too long.
    assert found == {1: b"ab\r", 2: b"", 3: b"y" * 11, 4: b"last"}
    assert {n: raw[:10] for n, raw in found.items()} == expected


@settings(max_examples=300, deadline=None)
# A first line that is itself a byte-order mark: the mark is dropped as ingestion drops it.
@example(lines=[b"\xef\xbb\xbf"], final_newline=False, bom=False, read_bytes=3, keep=0, picks=[1])
@example(
    lines=[b"\xef\xbb\xbfx", b"y"], final_newline=True, bom=True, read_bytes=3, keep=5, picks=[1, 2]
)
@given(
    lines=st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")), max_size=25),
    final_newline=st.booleans(),
    bom=st.booleans(),
    # At least the byte-order mark: the first read is where it is removed.
    read_bytes=st.integers(3, 40),
    keep=st.integers(0, 12),
    picks=st.lists(st.integers(1, 30), max_size=12),
)
def test_the_independent_reader_returns_exactly_the_numbered_lines(
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[bytes],
    final_newline: bool,
    bom: bool,
    read_bytes: int,
    keep: int,
    picks: list[int],
) -> None:
    """Any lines, any read size, any wanted numbers (some past the end): each wanted line that
    exists comes back as its bytes cut to `keep + 1`, and nothing else does."""
    content = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    path = tmp_path_factory.mktemp("reader") / "r.jsonl"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + content)
    # Like ingestion, one mark at the very start of the file is not part of its first line, even
    # when the mark is a line's own bytes.
    content = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    # A file's lines: a final newline ends the last line rather than starting an empty one.
    pieces = content.split(b"\n")
    if content.endswith(b"\n") or not content:
        pieces.pop()
    numbered = dict(enumerate(pieces, start=1))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sample_module, "READ_BYTES", read_bytes)
        found = read_lines(path, picks, max_line_bytes=keep)
    assert found == {n: numbered[n][: keep + 1] for n in set(picks) if n in numbered}


def test_the_mode_is_a_setting_and_a_cli_option() -> None:
    default = Settings.from_env({})
    assert (default.reconcile_mode, default.reconcile_sample_lines) == ("ledger", 10_000)
    chosen = Settings.from_env(
        {"EVENT_PLATFORM_RECONCILE_MODE": "full", "EVENT_PLATFORM_RECONCILE_SAMPLE_LINES": "0"}
    )
    assert (chosen.reconcile_mode, chosen.reconcile_sample_lines) == ("full", 0)
    with pytest.raises(SettingsError, match=r"EVENT_PLATFORM_RECONCILE_MODE='fast'.*ledger, full"):
        Settings.from_env({"EVENT_PLATFORM_RECONCILE_MODE": "fast"})
    with pytest.raises(SettingsError, match="EVENT_PLATFORM_RECONCILE_SAMPLE_LINES"):
        Settings.from_env({"EVENT_PLATFORM_RECONCILE_SAMPLE_LINES": "-1"})
    assert _reconcile_config(argparse.Namespace(reconcile="full")) == {
        "reconciliation_report": {"config": {"mode": "full"}}
    }
    assert _reconcile_config(argparse.Namespace(reconcile=None)) == {}
    with pytest.raises(ValueError, match="mode"):
        reconcile_partition(Path("x"), None, run_id="r", mode="fast")  # type: ignore[arg-type]
