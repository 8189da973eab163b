"""Before/after: the working tree's lineage against a git commit's, runs interleaved.

    .venv/bin/python -m benchmarks.ab_bench --baseline HEAD~1        # 1M lines, 5 pairs
    .venv/bin/python -m benchmarks.ab_bench --baseline <commit> --lines 200000 --pairs 3

A shared machine's speed drifts within an hour by more than most single changes are worth, so
two benchmark runs taken one after the other compare the drift as much as the code. Here every
pair runs both sides back to back, in alternating order, each in a fresh process (ingest, then
reconcile, on one connection, as `ingest_bench.py` does), and the report gives each side's
medians and the median of the paired differences, which is the figure to quote. Minor page
faults are reported beside the seconds: they count fresh memory touched and vary less between
runs of the same code than seconds do, so they show a change in allocation churn that seconds
can hide in noise.

The baseline's `event_platform` package is exported with `git archive` into a temporary folder
and put first on `PYTHONPATH`; every run reports which package it imported, and the command
refuses a run that imported the wrong one. The run itself is this module's, in either layout
of the package: `event_platform.ingest.ingestion`, or `event_platform.ingestion` in a commit
from before ingestion and reconciliation became packages. Both sides use this environment's
dependencies and the same file (the project's generator, 2% invalid, as in `ingest_bench.py`).
Every run's counts must match the truth file and reconciliation must pass, or the command exits 1.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.arguments import add_child_run_options, positive
from benchmarks.bench_data import DEFAULT_INVALID_RATE, bench_file, matches_truth
from benchmarks.child import cpu_seconds, minor_faults, run_child

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "event_platform"
# Per run: the two phases in wall and CPU seconds and in minor page faults (thousands), and the
# whole in wall seconds. Each figure with its unit.
FIGURES = {
    "ingest_wall": "s",
    "ingest_cpu": "s",
    "ingest_faults": "k",
    "reconcile_wall": "s",
    "reconcile_cpu": "s",
    "reconcile_faults": "k",
    "total_wall": "s",
}


class UsageError(Exception):
    """A bad argument found after parsing (an unknown commit): one line, exit 2."""


def run_one(path: Path) -> None:
    """One side, one run, in this (fresh) process; prints a JSON object."""
    import event_platform
    from event_platform.store.connection import connect

    # A baseline may predate the layout: ingest/ and reconcile/ as packages, and reconcile/
    # exporting its entry point.
    try:
        from event_platform.ingest.ingestion import ingest_file
    except ModuleNotFoundError:
        from event_platform.ingestion import ingest_file  # type: ignore[no-redef]
    try:
        from event_platform.reconcile import reconcile_partition
    except ImportError:
        try:
            from event_platform.reconcile.reconciliation import (  # type: ignore[no-redef]
                reconcile_partition,
            )
        except ModuleNotFoundError:
            from event_platform.reconciliation import reconcile_partition  # type: ignore[no-redef]

    truth = json.loads(path.with_name(path.name + ".truth.json").read_text())
    with (
        tempfile.TemporaryDirectory(dir=path.parent) as workdir,
        connect(Path(workdir) / "warehouse.duckdb") as con,
    ):
        wall, cpu, faults = time.perf_counter(), cpu_seconds(), minor_faults()
        result = ingest_file(path, con, run_id="ab")
        ingest_wall, ingest_cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        ingest_faults = (minor_faults() - faults) / 1000
        wall, cpu, faults = time.perf_counter(), cpu_seconds(), minor_faults()
        report = reconcile_partition(path, con, run_id="ab")
        reconcile_wall, reconcile_cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        reconcile_faults = (minor_faults() - faults) / 1000
    print(
        json.dumps(
            {
                "package": str(Path(event_platform.__file__).resolve().parent),
                "ingest_wall": ingest_wall,
                "ingest_cpu": ingest_cpu,
                "ingest_faults": ingest_faults,
                "reconcile_wall": reconcile_wall,
                "reconcile_cpu": reconcile_cpu,
                "reconcile_faults": reconcile_faults,
                "total_wall": ingest_wall + reconcile_wall,
                "correct": matches_truth(result, report, truth),
            }
        )
    )


def export_package(ref: str, folder: Path) -> str:
    """Write `ref`'s package under `folder`; returns the commit's short hash."""
    try:
        resolved = subprocess.run(
            ["git", "rev-parse", "--verify", "--short", f"{ref}^{{commit}}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        raise UsageError("--baseline needs git, which is not installed") from None
    if resolved.returncode != 0:
        raise UsageError(f"--baseline {ref!r} is not a commit of this repository")
    commit = resolved.stdout.strip()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, PACKAGE],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    return commit


def measure(path: Path, code: Path) -> dict:
    """One run of the code whose package sits in `code`, in a fresh process."""
    # An empty PYTHONPATH entry would mean the current folder: leave none. `code` comes first,
    # and is the child's working folder too (which `python -m` puts first on sys.path): the
    # project root only supplies `benchmarks`, its own package being shadowed.
    inherited = [part for part in os.environ.get("PYTHONPATH", "").split(os.pathsep) if part]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), str(ROOT), *inherited])}
    run = run_child("benchmarks.ab_bench", "--run-one", "--file", str(path), env=env, cwd=code)
    if "error" not in run and Path(run["package"]) != (code / PACKAGE).resolve():
        return {"error": [f"imported {run['package']}, not the package in {code}"]}
    return run


def summarise(runs: list[dict]) -> dict:
    return {
        figure: {
            "median": statistics.median(run[figure] for run in runs),
            "min": min(run[figure] for run in runs),
            "max": max(run[figure] for run in runs),
        }
        for figure in FIGURES
    }


def markdown(report: dict) -> str:
    base, cand = report["baseline"], report["candidate"]
    lines = [
        f"Interleaved A/B, {report['lines']:,} lines, {report['pairs']} pairs, "
        f"{report['machine']}, {report['when']}",
        "",
        f"| figure (s; k = 1,000 minor page faults) | baseline {base['label']} median "
        f"(min-max) | candidate {cand['label']} median (min-max) | paired change, median |",
        "|---|---|---|---|",
    ]
    for figure, unit in FIGURES.items():
        b, c = base["summary"][figure], cand["summary"][figure]
        change = report["paired_change"][figure]
        lines.append(
            f"| {figure.replace('_', ' ')} | {b['median']:.2f} ({b['min']:.2f}-{b['max']:.2f}) | "
            f"{c['median']:.2f} ({c['min']:.2f}-{c['max']:.2f}) | "
            f"{change['change']:+.2f} {unit} ({change['percent']:+.1f}%) |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="a commit, branch or tag (e.g. HEAD~1)")
    parser.add_argument("--lines", type=positive, default=1_000_000)
    parser.add_argument("--pairs", type=positive, default=5)
    add_child_run_options(parser, ROOT)
    args = parser.parse_args()
    if args.run_one:
        run_one(args.file)
        return 0
    if not args.baseline:
        parser.error("--baseline is required: the commit to compare the working tree with")

    runs: dict[str, list[dict]] = {"baseline": [], "candidate": []}
    with tempfile.TemporaryDirectory(prefix="ab-baseline-") as exported:
        try:
            commit = export_package(args.baseline, Path(exported))
        except UsageError as error:
            parser.error(str(error))
        args.data_dir.mkdir(parents=True, exist_ok=True)
        path, _ = bench_file(args.lines, DEFAULT_INVALID_RATE, args.data_dir)
        code = {"baseline": Path(exported), "candidate": ROOT}
        for pair in range(args.pairs):
            # Alternate which side goes first, so a drift within a pair hits both equally.
            order = ["baseline", "candidate"] if pair % 2 == 0 else ["candidate", "baseline"]
            for side in order:
                print(f"pair {pair + 1}/{args.pairs}: {side} ...", file=sys.stderr, flush=True)
                runs[side].append(measure(path, code[side]))
    failed = [run for side in runs.values() for run in side if "error" in run]
    if failed:
        print(f"{len(failed)} run(s) failed: {failed[0]['error']}", file=sys.stderr)
        return 1
    paired = {
        figure: [
            c[figure] - b[figure] for b, c in zip(runs["baseline"], runs["candidate"], strict=True)
        ]
        for figure in FIGURES
    }
    baseline_summary = summarise(runs["baseline"])
    report = {
        "lines": args.lines,
        "pairs": args.pairs,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "baseline": {"label": commit, "summary": baseline_summary, "runs": runs["baseline"]},
        "candidate": {
            "label": "working tree",
            "summary": summarise(runs["candidate"]),
            "runs": runs["candidate"],
        },
        "paired_change": {
            figure: {
                "change": statistics.median(changes),
                "unit": FIGURES[figure],
                "percent": 100 * statistics.median(changes) / baseline_summary[figure]["median"],
            }
            for figure, changes in paired.items()
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ab.json").write_text(json.dumps(report, indent=1))
    (args.out / "ab.md").write_text(markdown(report))
    print(markdown(report))
    wrong = [run for side in runs.values() for run in side if not run["correct"]]
    if wrong:
        print(f"{len(wrong)} run(s) did not match the truth file", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
