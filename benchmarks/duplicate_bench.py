"""One file landed twice under two names: every valid line of the second copy is a duplicate.

    .venv/bin/python -m benchmarks.duplicate_bench                       # 1M, 5M and 10M lines
    .venv/bin/python -m benchmarks.duplicate_bench --sizes 1000000 --repeat 3
    .venv/bin/python -m benchmarks.duplicate_bench --one-file --sizes 5000000

`--one-file` writes the generated lines twice into one file (2N lines) instead: the second
half repeats the first line by line, so every one of its valid lines is a duplicate of an
earlier chunk, which the writer settles after the last chunk as it does other files'.

This is the heaviest work the writer's settle across files does: it finds every line of the
second copy stored in the first, moves all of them from `events` to `rejected_events` with their
text read again, and reconciliation then proves each of them by the first copy's event: the
case that shows whether every statement still fits DuckDB's default memory cap. Each size runs
in a fresh process under that default cap, so its peak RSS is its own.

A run counts only when it is right: the first copy stores the truth's valid events with the
truth's counts per reason, the second stores none and holds every one of its valid lines as a
duplicate beside the same rejections, and the second copy's reconciliation passes. The command
exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from benchmarks.arguments import add_child_run_options, counts, positive
from benchmarks.bench_data import DEFAULT_INVALID_RATE, bench_file
from benchmarks.child import cpu_seconds, run_child

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ("first_ingest", "second_ingest", "second_ingest_cpu", "second_reconcile")


class Timed(NamedTuple):
    """One file ingested, then reconciled, with the seconds each took."""

    result: object  # IngestResult
    ingest: float
    ingest_cpu: float
    report: object  # ReconciliationReport
    reconcile: float


def _ingest_then_reconcile(path: Path, con, run_id: str) -> Timed:
    """Ingest `path` (wall and CPU seconds), then reconcile it (wall seconds)."""
    from event_platform.ingest.ingestion import ingest_file
    from event_platform.reconcile import reconcile_partition

    wall, cpu = time.perf_counter(), cpu_seconds()
    result = ingest_file(path, con, run_id=run_id)
    ingest, ingest_cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    wall = time.perf_counter()
    report = reconcile_partition(path, con, run_id=run_id)
    return Timed(result, ingest, ingest_cpu, report, time.perf_counter() - wall)


def _print_figures(first_ingest: float | None, second: Timed, correct: bool) -> None:
    """One JSON object on stdout: what `run_child` reads back."""
    figures = {
        "first_ingest": first_ingest,
        "second_ingest": second.ingest,
        "second_ingest_cpu": second.ingest_cpu,
        "second_reconcile": second.reconcile,
        "second_duplicates": second.result.duplicates,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "correct": correct,
    }
    print(json.dumps(figures))


def run_one(path: Path) -> None:
    """Both copies into one fresh warehouse, in this (fresh) process; prints a JSON object."""
    from event_platform.ingest.ingestion import ingest_file
    from event_platform.store.connection import connect

    truth = json.loads(path.with_name(path.name + ".truth.json").read_text())
    with tempfile.TemporaryDirectory(dir=path.parent) as workdir:
        first, second = Path(workdir) / "first.jsonl", Path(workdir) / "second.jsonl"
        # Two names for the same bytes: the landing of one file under a second name.
        for name in (first, second):
            try:
                os.link(path, name)
            except OSError:  # a file system without hard links
                shutil.copyfile(path, name)
        with connect(Path(workdir) / "warehouse.duckdb") as con:
            wall = time.perf_counter()
            original = ingest_file(first, con, run_id="first")
            first_ingest = time.perf_counter() - wall
            copied = _ingest_then_reconcile(second, con, "second")
    copy, report = copied.result, copied.report
    correct = (
        original.stored == truth["valid"]
        and original.duplicates == truth["duplicates"]
        and original.reason_counts == truth["reason_counts"]
        and copy.stored == 0
        and copy.duplicates == original.stored + original.duplicates
        and copy.rejected == original.rejected
        and report.passed
    )
    _print_figures(first_ingest, copied, correct)


def run_one_file(path: Path) -> None:
    """The lines twice in one file, into a fresh warehouse; prints the figures of `run_one`,
    the doubled file standing as the second copy."""
    from event_platform.store.connection import connect

    truth = json.loads(path.with_name(path.name + ".truth.json").read_text())
    with tempfile.TemporaryDirectory(dir=path.parent) as workdir:
        doubled = Path(workdir) / "twice.jsonl"
        with doubled.open("wb") as out:
            for _ in range(2):
                with path.open("rb") as half:
                    shutil.copyfileobj(half, out, 16 * 1024 * 1024)
        with connect(Path(workdir) / "warehouse.duckdb") as con:
            twice = _ingest_then_reconcile(doubled, con, "twice")
    result, report = twice.result, twice.report
    valid_lines = truth["valid"] + truth["duplicates"]
    correct = (
        result.stored == truth["valid"]
        and result.duplicates == valid_lines + truth["duplicates"]
        and result.rejected == 2 * (truth["lines"] - valid_lines)
        and report.passed
    )
    _print_figures(None, twice, correct)


def markdown(report: dict) -> str:
    # With --one-file there is no first copy: the doubled file stands as the second.
    what = "The lines twice in one file" if report.get("one_file") else "One file landed twice"
    copy = "file of 2N lines" if report.get("one_file") else "second copy"
    lines = [
        f"{what}, {report['machine']}, {report['when']}, "
        f"{report['repeat']} run(s) per size, DuckDB cap {report['memory_limit']}",
        "",
        f"| lines N | first copy ingest s | {copy} ingest s (CPU s) | {copy} reconcile s "
        "| duplicates stored | peak RSS MB | correct |",
        "|---|---|---|---|---|---|---|",
    ]
    for size in report["sizes"]:
        runs = size["runs"]
        errors = [run["error"] for run in runs if "error" in run]
        if errors:
            failed = f"{len(errors)} of {len(runs)} runs failed: {errors[0]}"
            lines.append(f"| {size['lines']:,} | {failed} ||||||")
            continue
        median = {
            figure: statistics.median(run[figure] for run in runs)
            for figure in FIGURES
            if runs[0][figure] is not None
        }
        first = f"{median['first_ingest']:.2f}" if "first_ingest" in median else "-"
        lines.append(
            f"| {size['lines']:,} | {first} | "
            f"{median['second_ingest']:.2f} ({median['second_ingest_cpu']:.2f}) | "
            f"{median['second_reconcile']:.2f} | {runs[0]['second_duplicates']:,} | "
            f"{max(run['peak_rss_mb'] for run in runs):.0f} | "
            f"{all(run['correct'] for run in runs)} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=counts, default=[1_000_000, 5_000_000, 10_000_000])
    parser.add_argument("--repeat", type=positive, default=1)
    parser.add_argument(
        "--one-file", action="store_true", help="the lines twice in one file, not two files"
    )
    add_child_run_options(parser, ROOT)
    args = parser.parse_args()
    if args.run_one:
        try:
            (run_one_file if args.one_file else run_one)(args.file)
        except Exception as exc:  # reported in the table: DuckDB's last line is only a link
            print(json.dumps({"error": [f"{type(exc).__name__}: {str(exc).splitlines()[0]}"]}))
        return 0
    if not args.sizes or 0 in args.sizes:
        parser.error("--sizes needs at least one size, each of at least 1 line")

    from event_platform.settings import DEFAULT_DUCKDB_MEMORY_LIMIT

    args.data_dir.mkdir(parents=True, exist_ok=True)
    sizes = []
    for lines in args.sizes:
        path, _ = bench_file(lines, DEFAULT_INVALID_RATE, args.data_dir)
        runs = []
        for attempt in range(args.repeat):
            print(f"{lines:,} lines, run {attempt + 1}/{args.repeat} ...", file=sys.stderr)
            layout = ["--one-file"] if args.one_file else []
            runs.append(
                run_child("benchmarks.duplicate_bench", "--run-one", "--file", str(path), *layout)
            )
        sizes.append({"lines": lines, "runs": runs})
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "repeat": args.repeat,
        "memory_limit": DEFAULT_DUCKDB_MEMORY_LIMIT,
        "one_file": args.one_file,
        "sizes": sizes,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    name = "duplicates_one_file" if args.one_file else "duplicates"
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=1))
    (args.out / f"{name}.md").write_text(markdown(report))
    print(markdown(report))
    runs = [run for size in sizes for run in size["runs"]]
    failed = [run for run in runs if "error" in run]
    if failed:
        print(f"{len(failed)} run(s) failed: {failed[0]['error']}", file=sys.stderr)
        return 1
    if not all(run["correct"] for run in runs):
        print("a run did not match the truth file", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
