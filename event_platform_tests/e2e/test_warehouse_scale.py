"""The warehouse-growth benchmark runs end to end on tiny warehouses and checks itself.

Timings are not asserted. What is asserted is that the command keeps working, that every file
(the Dagster run's included) lands with the truth's counts, that the publication after each run
serves every stored event (the synthetic ones and the files' valid lines), and that a Dagster run
whose partition misses its truth turns the command red instead of being reported as a timing.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from event_platform_tests.conftest import contradict_truth, run_benchmark

SMALL_LINES = 200


def run_bench(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return run_benchmark(
        "warehouse_scale",
        "--stored",
        "0,3000",
        "--file-events",
        "1000",
        "--lines",
        "2000",
        "--small-lines",
        str(SMALL_LINES),
        "--repeat",
        "1",
        "--data-dir",
        str(tmp_path / "data"),
        "--out",
        str(tmp_path / "out"),
    )


@pytest.mark.slow
def test_every_file_matches_its_truth_at_every_warehouse_size(tmp_path: Path) -> None:
    completed = run_bench(tmp_path)
    assert completed.returncode == 0, completed.stderr
    report = json.loads((tmp_path / "out" / "warehouse_scale.json").read_text())
    assert {(row["stored_events"], row["file"]) for row in report["files"]} == {
        (0, "large"),
        (0, "small"),
        (3000, "large"),
        (3000, "small"),
    }
    assert all(row["correct"] for row in report["files"])
    assert [row["stored_events"] for row in report["dagster"]] == [0, 3000]
    assert all(row["correct"] for row in report["dagster"])
    # Three files per run (large, small, the Dagster run's), each reconciled and so published.
    truths = [json.loads(path.read_text()) for path in (tmp_path / "data").glob("*.truth.json")]
    assert len(truths) == 3
    valid = sum(truth["valid"] for truth in truths)
    assert [(row["stored_events"], row["events"]) for row in report["publication"]] == [
        (0, valid),
        (3000, 3000 + valid),
    ]
    assert all(row["correct"] and row["snapshot_mb"] >= 0 for row in report["publication"])
    # The warehouse was built once and cached for later runs.
    assert (tmp_path / "out" / "scale" / "warehouse-3000-per1000-reconciled.duckdb").exists()


@pytest.mark.slow
def test_no_publish_skips_the_publication(tmp_path: Path) -> None:
    completed = run_benchmark(
        "warehouse_scale",
        "--stored",
        "0",
        "--lines",
        "300",
        "--small-lines",
        "100",
        "--repeat",
        "1",
        "--no-publish",
        "--data-dir",
        str(tmp_path / "data"),
        "--out",
        str(tmp_path / "out"),
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads((tmp_path / "out" / "warehouse_scale.json").read_text())
    assert report["publication"] == []
    assert "publication" not in completed.stdout


@pytest.mark.slow
def test_a_dagster_partition_that_misses_its_truth_fails_the_command(tmp_path: Path) -> None:
    assert run_bench(tmp_path).returncode == 0
    # The Dagster run's own file: seeded apart from the small file, so it shares no event.
    [truth_path] = (tmp_path / "data").glob(f"scale-{SMALL_LINES}-*-seed{SMALL_LINES + 1}.*.json")
    contradict_truth(truth_path)
    completed = run_bench(tmp_path)
    assert completed.returncode == 1
    report = json.loads((tmp_path / "out" / "warehouse_scale.json").read_text())
    assert not any(row["correct"] for row in report["dagster"])
    assert all(row["correct"] for row in report["files"])


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--stored", "0,2e7", "'0,2e7' is not a comma-separated list of whole numbers"),
        ("--repeat", "0", "'0' must be at least 1"),
    ],
)
def test_a_mistyped_option_is_a_usage_error_before_any_work(
    tmp_path: Path, option: str, value: str, message: str
) -> None:
    completed = run_benchmark("warehouse_scale", option, value, "--out", str(tmp_path))
    assert completed.returncode == 2
    assert message in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not list(tmp_path.iterdir())
