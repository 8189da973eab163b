"""The before/after benchmark runs both sides on a small file and really runs two codebases.

Timings are not asserted; what is asserted is that each side imported its own package, that the
report holds every pair, and that bad input is a usage error and a wrong result a failure.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from event_platform_tests.conftest import assert_refuses_a_contradicted_truth, run_benchmark

ROOT = Path(__file__).resolve().parents[2]


def run_ab(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    folders = ["--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out")]
    return run_benchmark("ab_bench", "--lines", "3000", *folders, *extra)


@pytest.mark.slow
def test_each_side_runs_its_own_code_and_the_report_holds_every_pair(tmp_path: Path) -> None:
    completed = run_ab(tmp_path, "--baseline", "HEAD", "--pairs", "2")
    assert completed.returncode == 0, completed.stderr
    report = json.loads((tmp_path / "out" / "ab.json").read_text())
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    assert report["baseline"]["label"] == head
    baseline, candidate = report["baseline"]["runs"], report["candidate"]["runs"]
    assert len(baseline) == len(candidate) == 2
    assert all(run["correct"] for run in baseline + candidate)
    assert {run["package"] for run in candidate} == {str(ROOT / "event_platform")}
    # The baseline was exported from git into a folder of its own, not the working tree.
    [exported] = {run["package"] for run in baseline}
    assert not exported.startswith(str(ROOT)) and exported.endswith("event_platform")
    # Page faults are counted per phase, on both sides: every run touches fresh memory.
    assert all(run["ingest_faults"] > 0 < run["reconcile_faults"] for run in baseline + candidate)
    assert report["paired_change"]["ingest_faults"]["unit"] == "k"
    table = (tmp_path / "out" / "ab.md").read_text()
    assert "| total wall |" in table and "| ingest faults |" in table


def test_an_unknown_commit_is_a_one_line_usage_error(tmp_path: Path) -> None:
    completed = run_ab(tmp_path, "--baseline", "no-such-ref", "--pairs", "1")
    assert completed.returncode == 2
    assert "'no-such-ref' is not a commit" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not (tmp_path / "data").exists(), "nothing is generated for a bad argument"


@pytest.mark.slow
def test_a_run_that_misses_the_truth_fails_the_command(tmp_path: Path) -> None:
    assert_refuses_a_contradicted_truth(
        lambda: run_ab(tmp_path, "--baseline", "HEAD", "--pairs", "1"),
        tmp_path / "data" / "bench-3000-invalid-0.02.jsonl.truth.json",
    )
