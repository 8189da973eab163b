"""The benchmarks' input files: generated once by the project's generator and cached.

A cached file is named by every argument that shapes it (line count and invalid share), so a
run with another `--invalid-rate` gets its own file instead of silently measuring the file of
the first rate that was asked for.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

# The share of invalid lines every benchmark generates unless told otherwise, so that they all
# measure one cached file per size.
DEFAULT_INVALID_RATE = 0.02


def bench_file_path(lines: int, invalid_rate: float, folder: Path) -> Path:
    """Where the file of `lines` lines, `invalid_rate` of them invalid, is cached."""
    return folder / f"bench-{lines}-invalid-{invalid_rate:g}.jsonl"


def bench_file(lines: int, invalid_rate: float, folder: Path) -> tuple[Path, dict]:
    """The cached file and its truth, generated first if missing. Seeded by `lines`, so a
    regenerated file is the same file."""
    # Imported here: a contender's child process imports this module too, and its peak RSS
    # should hold what it runs, not the generator's polars.
    from event_platform.generator import default_truth_path, generate_file

    path = bench_file_path(lines, invalid_rate, folder)
    truth_path = default_truth_path(path)
    if not truth_path.exists():
        generate_file(path, lines, invalid_rate=invalid_rate, seed=lines)
    return path, json.loads(truth_path.read_text())


def flushed_copy(source: Path, target: Path) -> None:
    """Copy a cached warehouse for one run, flushed to disk before the clock starts: otherwise
    the copy's writeback competes with the run it is timed in."""
    shutil.copyfile(source, target)
    with target.open("rb+") as handle:
        os.fsync(handle.fileno())


def matches_truth(result: Any, report: Any, truth: dict) -> bool:
    """A run stored exactly the generator's valid events, with its counts per reason, and
    reconciliation passed: a fast wrong answer is not a result. `result` and `report` are an
    ingestion's result and its reconciliation report, typed loosely because `ab_bench.py`
    passes those of an older checkout of the package too."""
    return (
        result.reason_counts == truth["reason_counts"]
        and result.stored == truth["valid"]
        and result.duplicates == truth["duplicates"]
        and report.passed
    )
