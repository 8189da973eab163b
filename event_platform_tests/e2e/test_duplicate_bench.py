"""The landed-twice benchmark on a small file: it runs, reports, and refuses a wrong result.

Timings are not asserted; what is asserted is that the second copy was stored as nothing but
duplicates, that the report says so, and that a run contradicting the truth fails the command.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from event_platform_tests.conftest import assert_refuses_a_contradicted_truth, run_benchmark


def run_bench(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    folders = ["--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out")]
    return run_benchmark("duplicate_bench", "--sizes", "3000", *folders, *extra)


@pytest.mark.slow
def test_the_second_copy_is_all_duplicates_and_the_report_says_so(tmp_path: Path) -> None:
    completed = run_bench(tmp_path, "--repeat", "2")
    assert completed.returncode == 0, completed.stderr
    report = json.loads((tmp_path / "out" / "duplicates.json").read_text())
    truth = json.loads((tmp_path / "data" / "bench-3000-invalid-0.02.jsonl.truth.json").read_text())
    [size] = report["sizes"]
    assert size["lines"] == 3000 and len(size["runs"]) == 2
    for run in size["runs"]:
        assert run["correct"]
        assert run["second_duplicates"] == truth["valid"] + truth["duplicates"]
    assert "| 3,000 |" in (tmp_path / "out" / "duplicates.md").read_text()


@pytest.mark.slow
def test_one_file_holding_its_lines_twice_stores_the_first_copy_only(tmp_path: Path) -> None:
    completed = run_bench(tmp_path, "--one-file")
    assert completed.returncode == 0, completed.stderr
    report = json.loads((tmp_path / "out" / "duplicates_one_file.json").read_text())
    truth = json.loads((tmp_path / "data" / "bench-3000-invalid-0.02.jsonl.truth.json").read_text())
    [run] = report["sizes"][0]["runs"]
    assert run["correct"] and run["first_ingest"] is None
    assert run["second_duplicates"] == truth["valid"] + 2 * truth["duplicates"]
    table = (tmp_path / "out" / "duplicates_one_file.md").read_text()
    assert table.startswith("The lines twice in one file") and "| 3,000 | - |" in table


def test_a_size_of_zero_is_a_one_line_usage_error(tmp_path: Path) -> None:
    completed = run_bench(tmp_path, "--sizes", "0")
    assert completed.returncode == 2
    assert "--sizes needs at least one size" in completed.stderr
    assert "Traceback" not in completed.stderr


@pytest.mark.slow
def test_a_run_that_misses_the_truth_fails_the_command(tmp_path: Path) -> None:
    assert_refuses_a_contradicted_truth(
        lambda: run_bench(tmp_path), tmp_path / "data" / "bench-3000-invalid-0.02.jsonl.truth.json"
    )
