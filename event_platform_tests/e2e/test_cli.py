"""The `event-platform` console script end to end, as cron would run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

from event_platform_tests.conftest import event_line, write_lines

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = str(Path(sys.executable).with_name("event-platform"))


def cli(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SCRIPT, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVENT_PLATFORM_", "DAGSTER"))}
    env["EVENT_PLATFORM_DATA_DIR"] = str(tmp_path / "data")
    env.update(extra)
    return env


def test_ingest_prints_one_json_object_per_file_and_exits_zero(tmp_path: Path) -> None:
    good = write_lines(tmp_path / "good.jsonl", [event_line(i) for i in range(300)] + ["{"])
    other = write_lines(tmp_path / "other.jsonl", [event_line(i) for i in range(300, 310)])
    result = cli("ingest", "--json", str(good), str(other), env=environment(tmp_path))
    assert result.returncode == 0, result.stderr
    summaries = [json.loads(line) for line in result.stdout.splitlines()]
    assert [s["partition"] for s in summaries] == ["good.jsonl", "other.jsonl"]
    first = summaries[0]
    assert (first["lines"], first["valid"], first["rejected"], first["duplicates"]) == (
        301,
        300,
        1,
        0,
    )
    assert first["reconciliation_passed"] is True and first["stored"] == 300
    checks = {c["check"]: c for c in first["checks"]}
    assert checks["reconciliation_exact"]["blocking"] and checks["reconciliation_exact"]["passed"]
    assert checks["rejection_rate"]["passed"] is True  # 1 of 301 lines is under 1%
    database = Path(first["database"])
    with duckdb.connect(str(database), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM events").fetchone() == (310,)


def test_readable_summary_names_failed_checks(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "noisy.jsonl", [event_line(1), "nope", ""])
    result = cli("ingest", str(path), env=environment(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "noisy.jsonl -> partition noisy.jsonl: ok" in result.stdout
    assert "check rejection_rate (ERROR) failed on rejected_events" in result.stdout
    assert "reconciliation passed" in result.stdout


def test_usage_errors_exit_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    env = environment(tmp_path)
    missing = cli("ingest", str(tmp_path / "missing.jsonl"), env=env)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"event-platform ingest: no such file: {tmp_path / 'missing.jsonl'}"
    ]
    folder = cli("ingest", str(tmp_path), env=env)
    assert folder.returncode == 2 and "a folder" in folder.stderr
    assert "Traceback" not in missing.stderr + folder.stderr
    no_args = cli("ingest", env=env)
    assert no_args.returncode == 2 and "Traceback" not in no_args.stderr


def test_concurrent_ingests_share_the_warehouse_without_failing(tmp_path: Path) -> None:
    """Two cron jobs at once: the writer pool and short connections keep both green."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster" / "dev.yaml", home / "dagster.yaml")
    env = environment(tmp_path, DAGSTER_HOME=str(home))
    files = [
        write_lines(
            tmp_path / f"part{n}.jsonl", [event_line(n * 100_000 + i) for i in range(40_000)]
        )
        for n in range(3)
    ]
    processes = [
        subprocess.Popen(
            [SCRIPT, "ingest", "--json", str(path)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in files
    ]
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
        assert json.loads(stdout)["reconciliation_passed"] is True
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM events").fetchone() == (120_000,)


def test_a_bad_setting_is_a_one_line_usage_error(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "a.jsonl", [event_line(1)])
    result = cli("ingest", str(path), env=environment(tmp_path, EVENT_PLATFORM_EVENT_TYPES="abc"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "event-platform ingest: EVENT_PLATFORM_EVENT_TYPES='abc' is not valid: "
        "expected integers and ranges such as 1-10 or 1,2,5-7"
    ]


def test_a_step_out_of_memory_names_the_limit_to_raise(tmp_path: Path) -> None:
    """DuckDB's own message suggests `SET memory_limit`; this platform takes it from the
    environment, and nothing of the file is stored."""
    small = write_lines(tmp_path / "small.jsonl", [event_line(i) for i in range(10)])
    assert cli("ingest", "--no-publish", str(small), env=environment(tmp_path)).returncode == 0
    path = write_lines(tmp_path / "big.jsonl", [event_line(i) for i in range(5_000)])
    env = environment(tmp_path, EVENT_PLATFORM_DUCKDB_MEMORY_LIMIT="1MB")
    result = cli("ingest", str(path), env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    line, timing, done = result.stdout.splitlines()
    assert line.startswith(f"{path}: FAILED (run ")
    assert timing.startswith("  time ") and done.startswith("done: 1 file(s) in ")
    assert "ran out of memory under its 1MB cap" in line
    assert "Raise EVENT_PLATFORM_DUCKDB_MEMORY_LIMIT" in line
    database = tmp_path / "data" / "warehouse.duckdb"
    with duckdb.connect(str(database), read_only=True) as con:
        stored = con.execute("SELECT source_file, count(*) FROM events GROUP BY ALL")
        assert stored.fetchall() == [("small.jsonl", 10)]
