"""The per-statement timeline on a small file cut into many chunks: it runs, accounts for every
line, sees the writer's statements where they run, and refuses a wrong result.

Timings are not asserted; where each statement shows up is.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from event_platform.generator import generate_file
from event_platform.ingest.ingestion import ingest_file
from event_platform.store.connection import connect
from event_platform.store.writer import PROBE_KEYS_LIMIT
from event_platform_tests.conftest import assert_refuses_a_contradicted_truth, run_benchmark

LINES = 3000
TRUTH = f"bench-{LINES}-invalid-0.02.jsonl.truth.json"


def run_timeline(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    folders = ["--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out")]
    # 3,000 lines are about 500 kB: 64 kB chunks make eight of them.
    sizes = ["--lines", str(LINES), "--chunk-bytes", "65536", "--parts", "4"]
    return run_benchmark("statement_timeline", *sizes, *folders, *extra)


def report(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "out" / "statements.json").read_text())


def labels(entries: list) -> list[str]:
    return [label for label, _ in entries]


@pytest.mark.slow
def test_every_line_and_every_chunk_write_is_accounted_for(tmp_path: Path) -> None:
    completed = run_timeline(tmp_path)
    assert completed.returncode == 0, completed.stderr
    result = report(tmp_path)
    assert result["correct"] and result["lines"] == LINES and result["chunks"] >= 4
    assert [part["part"] for part in result["parts"]] == [1, 2, 3, 4]
    assert sum(part["lines"] for part in result["parts"]) == LINES
    for part in result["parts"]:
        assert any(
            label.startswith("INSERT INTO main.events") for label in labels(part["statements"])
        )
    tail = labels(result["after_last_chunk"])
    assert tail[-1] == "COMMIT"
    # The partition's old rows go before the first chunk, and the keys are published last.
    assert "DELETE FROM main.events WHERE source_file = $source_file" in labels(
        result["parts"][0]["statements"]
    )
    assert any(label.startswith("INSERT INTO main.event_hash_keys") for label in tail)
    table = (tmp_path / "out" / "statements.md").read_text()
    assert f"One ingestion of {LINES:,} lines" in table and "| 4 |" in table


@pytest.mark.slow
def test_the_probe_limit_decides_where_repeats_are_looked_for(tmp_path: Path) -> None:
    assert run_timeline(tmp_path).returncode == 0
    probed = report(tmp_path)
    assert run_timeline(tmp_path, "--probe-keys-limit", "0").returncode == 0
    unprobed = report(tmp_path)
    assert (probed["probe_keys_limit"], unprobed["probe_keys_limit"]) == (PROBE_KEYS_LIMIT, 0)
    probe = "SELECT count(*) FROM file_keys k SEMI JOIN valid_chunk v"
    settle = "CREATE OR REPLACE TEMP TABLE repeated_keys AS"
    assert any(label.startswith(probe) for label in labels(probed["parts"][-1]["statements"]))
    assert not any(label.startswith(probe) for label in labels(unprobed["parts"][-1]["statements"]))
    assert not any(label.startswith(settle) for label in labels(probed["after_last_chunk"]))
    assert any(label.startswith(settle) for label in labels(unprobed["after_last_chunk"]))
    assert unprobed["correct"]


@pytest.mark.slow
def test_a_copy_of_a_given_warehouse_is_ingested_into_and_the_original_kept(
    tmp_path: Path,
) -> None:
    other = tmp_path / "other.jsonl"
    generate_file(other, 200, invalid_rate=0.0, seed=7)
    warehouse = tmp_path / "stored.duckdb"
    with connect(warehouse) as con:
        stored = ingest_file(other, con, run_id="before").stored
    completed = run_timeline(tmp_path, "--warehouse", str(warehouse))
    assert completed.returncode == 0, completed.stderr
    assert report(tmp_path)["warehouse"] == str(warehouse)
    with connect(warehouse, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM events").fetchall() == [(stored,)]


def test_a_missing_warehouse_is_a_one_line_usage_error(tmp_path: Path) -> None:
    completed = run_timeline(tmp_path, "--warehouse", str(tmp_path / "absent.duckdb"))
    assert completed.returncode == 2
    assert "absent.duckdb: no such file" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_a_file_that_is_not_a_warehouse_is_refused_before_the_copy(tmp_path: Path) -> None:
    not_a_warehouse = tmp_path / "notes.txt"
    not_a_warehouse.write_text("not a DuckDB file\n")
    completed = run_timeline(tmp_path, "--warehouse", str(not_a_warehouse))
    assert completed.returncode == 2
    assert "notes.txt" in completed.stderr and "not a valid DuckDB database" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not (tmp_path / "out" / "statements.json").exists()


def test_an_invalid_rate_outside_0_to_1_is_a_one_line_usage_error(tmp_path: Path) -> None:
    completed = run_timeline(tmp_path, "--invalid-rate", "5")
    assert completed.returncode == 2
    assert "--invalid-rate: '5' must be between 0 and 1" in completed.stderr
    assert "Traceback" not in completed.stderr


@pytest.mark.slow
def test_a_run_that_misses_the_truth_fails_the_command(tmp_path: Path) -> None:
    assert_refuses_a_contradicted_truth(lambda: run_timeline(tmp_path), tmp_path / "data" / TRUTH)
