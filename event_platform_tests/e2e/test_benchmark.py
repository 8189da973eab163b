"""The ingestion benchmark runs end to end on a small file and checks itself against the truth.

Timings are not asserted (they belong to the benchmark, not to the suite); what is asserted is
that the command keeps working, writes its table, and refuses a result that missed the truth.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from event_platform_tests.conftest import assert_refuses_a_contradicted_truth, run_benchmark

# Each test runs the benchmark end to end in fresh processes.
pytestmark = pytest.mark.slow


def run_bench(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_benchmark(
        "ingest_bench",
        "--lines",
        "3000",
        "--repeat",
        "1",
        "--contenders",
        "duckdb_read_json,event_platform,naive_row_by_row",
        "--data-dir",
        str(tmp_path / "data"),
        "--out",
        str(tmp_path / "out"),
        *extra,
    )


def test_small_benchmark_writes_its_table_and_matches_the_truth(tmp_path: Path) -> None:
    completed = run_bench(tmp_path, "--memory-sizes", "2000", "--overhead-repeat", "1")
    assert completed.returncode == 0, completed.stderr
    report = json.loads((tmp_path / "out" / "ingest.json").read_text())
    by_name = {row["contender"]: row for row in report["contenders"]}
    assert set(by_name) == {"duckdb_read_json", "event_platform", "naive_row_by_row"}
    ours = by_name["event_platform"]
    assert ours["correct"] is True
    assert ours["detail"]["rows"] == 3000
    truth = json.loads((tmp_path / "data" / "bench-3000-invalid-0.02.jsonl.truth.json").read_text())
    assert ours["detail"]["stored"] == truth["valid"]
    assert ours["detail"]["rejected"] + ours["detail"]["duplicates"] == 3000 - truth["valid"]
    assert report["ratio_vs_raw"] > 0
    assert [m["lines"] for m in report["memory"]] == [2000]
    # The lineage (3 steps), the blocking check, and the six data checks in one step.
    assert report["dagster_overhead"]["steps"] == 5
    assert report["dagster_overhead"]["checks"] == 7
    assert report["memory"][0]["correct"] is True
    table = (tmp_path / "out" / "ingest.md").read_text()
    assert "| event_platform | " in table and "Ratio event_platform / duckdb_read_json" in table


def test_benchmark_fails_when_our_output_misses_the_truth(tmp_path: Path) -> None:
    assert_refuses_a_contradicted_truth(
        lambda: run_bench(tmp_path, "--memory-sizes", "", "--overhead-repeat", "0"),
        tmp_path / "data" / "bench-3000-invalid-0.02.jsonl.truth.json",
    )


def test_each_invalid_rate_measures_its_own_file(tmp_path: Path) -> None:
    """A file of the same size cached for another rate must not stand in for this one."""

    def rejected_share(rate: str) -> float:
        completed = run_benchmark(
            "ingest_bench",
            *("--lines", "3000", "--repeat", "1", "--contenders", "event_platform"),
            *("--memory-sizes", "", "--overhead-repeat", "0", "--invalid-rate", rate),
            *("--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out")),
        )
        assert completed.returncode == 0, completed.stderr
        report = json.loads((tmp_path / "out" / "ingest.json").read_text())
        (ours,) = report["contenders"]
        assert ours["correct"] is True
        return (ours["detail"]["rejected"] + ours["detail"]["duplicates"]) / 3000

    assert rejected_share("0.02") < 0.05
    assert rejected_share("0.3") > 0.25


def test_without_the_raw_load_there_is_no_ratio_rather_than_zero(tmp_path: Path) -> None:
    completed = run_benchmark(
        "ingest_bench",
        *("--lines", "3000", "--repeat", "1", "--contenders", "event_platform"),
        *("--memory-sizes", "", "--overhead-repeat", "0"),
        *("--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out")),
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads((tmp_path / "out" / "ingest.json").read_text())["ratio_vs_raw"] is None
    table = (tmp_path / "out" / "ingest.md").read_text()
    assert "Ratio event_platform" not in table
    assert "No ratio: it needs a successful event_platform and duckdb_read_json run." in table
