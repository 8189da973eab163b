"""`event-platform ingest` on the inputs and storage a real machine gives it.

Symlinks land what they point to; one runaway line fails neither its file nor memory; a
corrupt, read-only or full warehouse fails at once with one line naming the cause and the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from pathlib import Path

import duckdb
import pytest

from event_platform_tests.conftest import event_line, write_lines
from event_platform_tests.e2e.test_cli import cli, environment


def stored(tmp_path: Path) -> dict[str, int]:
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as con:
        return dict(con.execute("SELECT source_file, count(*) FROM events GROUP BY ALL").fetchall())


def test_a_relative_symlink_lands_the_file_it_points_to(tmp_path: Path) -> None:
    """`ln -s target.jsonl in/rel.jsonl`: the link's target resolves against `in/`, not against
    the landing folder, where a different target.jsonl lies."""
    inbox = tmp_path / "in"
    inbox.mkdir()
    write_lines(inbox / "target.jsonl", [event_line(i) for i in range(7)])
    landing = tmp_path / "data" / "landing"
    landing.mkdir(parents=True)
    write_lines(landing / "target.jsonl", [event_line(i) for i in range(100, 103)])
    (inbox / "rel.jsonl").symlink_to("target.jsonl")
    write_lines(tmp_path / "other.jsonl", [event_line(i) for i in range(200, 205)])
    (inbox / "abs.jsonl").symlink_to(tmp_path / "other.jsonl")
    result = cli(
        "ingest",
        "--json",
        str(inbox / "rel.jsonl"),
        str(inbox / "abs.jsonl"),
        env=environment(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["valid"] for line in result.stdout.splitlines()] == [7, 5]
    assert (landing / "rel.jsonl").read_bytes() == (inbox / "target.jsonl").read_bytes()
    assert not (landing / "rel.jsonl").is_symlink()
    assert stored(tmp_path) == {"rel.jsonl": 7, "abs.jsonl": 5}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.symlink_to(p.parent / "nowhere.jsonl"), "broken symlink"),
        (lambda p: os.mkfifo(p), "not a regular file"),
        (lambda p: p.mkdir(), "a folder"),
    ],
    ids=["broken-symlink", "fifo", "folder"],
)
def test_what_cannot_be_landed_is_a_usage_error(tmp_path: Path, make, message: str) -> None:
    path = tmp_path / "odd.jsonl"
    make(path)
    result = cli("ingest", str(path), env=environment(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"event-platform ingest: {message}: {path}"]


def test_a_line_over_the_limit_is_rejected_and_the_rest_is_stored(tmp_path: Path) -> None:
    """A 30 MB line used to run the validator out of memory and fail the whole file."""
    path = tmp_path / "long.jsonl"
    with path.open("wb") as out:
        for i in range(50):
            out.write(event_line(i).encode() + b"\n")
        out.write(b'{"event_type": 1, "pad": "' + b"x" * 30_000_000 + b'"}\n')
        for i in range(50, 100):
            out.write(event_line(i).encode() + b"\n")
    env = environment(tmp_path, EVENT_PLATFORM_DUCKDB_MEMORY_LIMIT="64MB")
    result = cli("ingest", "--json", str(path), env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["lines"], summary["valid"], summary["rejected"]) == (101, 100, 1)
    assert summary["reconciliation_passed"] is True
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as con:
        [(number, reasons, kept)] = con.execute(
            "SELECT line_number, reasons, octet_length(raw_line) FROM rejected_events"
        ).fetchall()
    assert (number, reasons, kept) == (51, ["line_too_long"], 1024 * 1024)


def test_the_line_limit_is_a_setting(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "a.jsonl", [event_line(1), event_line(2) + " " * 500])
    env = environment(tmp_path, EVENT_PLATFORM_MAX_LINE_BYTES="400")
    summary = json.loads(cli("ingest", "--json", str(path), env=env).stdout)
    assert (summary["valid"], summary["rejected"]) == (1, 1)


def test_a_corrupt_warehouse_fails_at_once_naming_it(tmp_path: Path) -> None:
    warehouse = tmp_path / "data" / "warehouse.duckdb"
    warehouse.parent.mkdir(parents=True)
    warehouse.write_bytes(os.urandom(64 * 1024))
    path = write_lines(tmp_path / "a.jsonl", [event_line(1)])
    started = time.monotonic()
    result = cli("ingest", str(path), env=environment(tmp_path))
    # DuckDB's resource retried this ten times over ~100 s while holding the writer.
    assert time.monotonic() - started < 30
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    failed = result.stdout.splitlines()[0]
    assert f"cannot open the warehouse {warehouse}" in failed


@contextlib.contextmanager
def mounted(args: list[str], target: Path):
    try:
        subprocess.run(["mount", *args, str(target)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"cannot mount here (needs root): {error}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)


def test_a_read_only_data_folder_fails_with_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    path = write_lines(tmp_path / "a.jsonl", [event_line(1)])
    assert cli("ingest", str(path), env=environment(tmp_path)).returncode == 0
    other = write_lines(tmp_path / "b.jsonl", [event_line(2)])
    with mounted(["--bind", "-o", "ro", str(data)], data):
        subprocess.run(["mount", "-o", "remount,bind,ro", str(data)], check=False)
        result = cli("ingest", str(other), env=environment(tmp_path))
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert "Read-only file system" in output and str(data) in output


def test_a_full_disk_fails_the_file_with_its_cause_and_loses_nothing(tmp_path: Path) -> None:
    """The warehouse fills its disk mid-write: the file fails with DuckDB's cause and the path,
    its partial rows roll back, and once there is room again the file is ingested whole."""
    data = tmp_path / "data"
    data.mkdir()
    source = tmp_path / "big.jsonl"
    write_lines(source, [event_line(i) for i in range(200_000)])
    with mounted(["-t", "tmpfs", "-o", "size=45M", "tmpfs"], data):
        result = cli("ingest", str(source), env=environment(tmp_path))
        assert result.returncode == 1
        output = result.stdout + result.stderr
        assert "Traceback" not in output
        assert "No space left on device" in output or "out of disk space" in output.lower()
        assert str(data) in output
    result = cli("ingest", "--json", str(source), env=environment(tmp_path))
    assert json.loads(result.stdout)["valid"] == 200_000
