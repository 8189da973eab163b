"""Ingestion benchmark: event_platform against DuckDB's raw load and its peers, in one run.

    .venv/bin/python -m benchmarks.ingest_bench                   # 5M lines, 3 repeats
    .venv/bin/python -m benchmarks.ingest_bench --lines 1000000 --repeat 1 --memory-sizes ""

Data comes from the project's generator (2% invalid lines by default) with its truth file. Every
contender runs in a fresh subprocess, so each peak RSS is that run's own. Contenders:

- duckdb_read_json: `CREATE TABLE AS SELECT * FROM read_json(...)`; no validation at all.
- event_platform: the whole lineage without Dagster: read, validate with every reason code,
  hash, write valid and rejected rows, reconcile; checked against the truth file.
- naive_row_by_row: json.loads, Python checks and one INSERT per row (what the original
  take-home did), on a slice, extrapolated to the file.
- dlt: dlt loading the same file into DuckDB (`pip install -e .[bench]`), one resource that
  yields each parsable line; on a 100k-line slice, extrapolated.
Dagster's own per-run overhead is measured separately, on a 10-line file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.arguments import counts, positive, share
from benchmarks.bench_data import DEFAULT_INVALID_RATE, bench_file, matches_truth
from benchmarks.child import run_child

ROOT = Path(__file__).resolve().parents[1]
NAIVE_SLICE = 20_000
DLT_SLICE = 100_000


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- contenders: each runs in its own process and returns a dict -------------------------------


def run_duckdb_read_json(path: Path, workdir: Path, truth: dict) -> dict:
    import duckdb

    database = workdir / "raw.duckdb"
    started = time.perf_counter()
    with duckdb.connect(str(database)) as con:
        con.execute(
            "CREATE TABLE raw AS SELECT * FROM read_json($path, format='newline_delimited', "
            "ignore_errors=true)",
            {"path": str(path)},
        )
        loaded = con.execute("SELECT count(*) FROM raw").fetchone()[0]
    return {
        "seconds": time.perf_counter() - started,
        "rows": truth["lines"],
        "loaded_rows": loaded,
        "checks": "none: malformed lines become NULL rows or are skipped; no reasons kept",
    }


def run_event_platform(path: Path, workdir: Path, truth: dict) -> dict:
    from event_platform.ingest.ingestion import ingest_file
    from event_platform.reconcile import reconcile_partition, record_report
    from event_platform.store.connection import connect

    started = time.perf_counter()
    with connect(workdir / "warehouse.duckdb") as con:
        result = ingest_file(path, con, run_id="bench")
        ingested = time.perf_counter()
        report = reconcile_partition(path, con, run_id="bench")
        record_report(con, report)
    finished = time.perf_counter()
    correct = matches_truth(result, report, truth)
    return {
        "seconds": finished - started,
        "ingest_seconds": ingested - started,
        "reconcile_seconds": finished - ingested,
        "stage_seconds": result.stage_seconds,
        "rows": result.lines,
        "stored": result.stored,
        "rejected": result.rejected,
        "duplicates": result.duplicates,
        "correct": correct,
        "checks": "every reason code, duplicates, reconciliation (all counts match the truth)",
    }


def run_naive_row_by_row(path: Path, workdir: Path, truth: dict) -> dict:
    import re

    import duckdb

    email = re.compile(r"^[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}$")
    con = duckdb.connect(str(workdir / "naive.duckdb"))
    con.execute(
        "CREATE TABLE events (event_type INTEGER, event_time TIMESTAMP, processing_date DATE, "
        "user_email VARCHAR, phone_number VARCHAR)"
    )
    con.execute("CREATE TABLE rejected (line VARCHAR)")
    started = time.perf_counter()
    with path.open(encoding="utf-8", errors="replace") as lines:
        for count, line in enumerate(lines):
            if count == NAIVE_SLICE:
                break
            try:
                record = json.loads(line)
                data = record["data"]
                datetime.strptime(record["event_time"], "%Y-%m-%d %H:%M:%S")
                assert 1 <= record["event_type"] <= 10 and email.match(data["user_email"])
                con.execute(
                    "INSERT INTO events VALUES (?, ?, ?, ?, ?)",
                    [
                        record["event_type"],
                        record["event_time"],
                        record["processing_date"],
                        data["user_email"],
                        data["phone_number"],
                    ],
                )
            except (ValueError, KeyError, TypeError, AssertionError):
                con.execute("INSERT INTO rejected VALUES (?)", [line])
    seconds = time.perf_counter() - started
    measured = min(NAIVE_SLICE, truth["lines"])
    rate = measured / seconds
    return {
        "seconds": truth["lines"] / rate,
        "measured_seconds": seconds,
        "measured_rows": measured,
        "rows": truth["lines"],
        "extrapolated": True,
        "checks": "json.loads, keys, event_type range, event_time parse, email regex",
    }


def run_dlt(path: Path, workdir: Path, truth: dict) -> dict:
    import dlt

    skipped = 0

    @dlt.resource(name="events", write_disposition="append")
    def events():
        nonlocal skipped
        with path.open("rb") as lines:
            for count, line in enumerate(lines):
                if count == DLT_SLICE:
                    break
                try:
                    yield json.loads(line)
                except ValueError:
                    skipped += 1  # dlt has no notion of a rejected line: it is dropped

    pipeline = dlt.pipeline(
        pipeline_name="bench",
        destination=dlt.destinations.duckdb(str(workdir / "dlt.duckdb")),
        dataset_name="bench",
        pipelines_dir=str(workdir / "dlt_pipelines"),
    )
    started = time.perf_counter()
    pipeline.run(events())
    seconds = time.perf_counter() - started
    measured = min(DLT_SLICE, truth["lines"])
    return {
        "seconds": truth["lines"] / (measured / seconds),
        "measured_seconds": seconds,
        "measured_rows": measured,
        "extrapolated": True,
        "rows": truth["lines"],
        "unparsable_dropped": skipped,
        "checks": "schema inference and type coercion only (wrong types become variant "
        "columns); no ranges, formats, duplicates or per-line reasons",
    }


CONTENDERS = {
    "duckdb_read_json": run_duckdb_read_json,
    "event_platform": run_event_platform,
    "naive_row_by_row": run_naive_row_by_row,
    "dlt": run_dlt,
}


def run_one(contender: str, path: Path, truth_path: Path) -> None:
    truth = json.loads(truth_path.read_text())
    with tempfile.TemporaryDirectory(dir=path.parent) as workdir:
        result = CONTENDERS[contender](path, Path(workdir), truth)
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(result))


# --- orchestration -------------------------------------------------------------------------------


def measure(contender: str, path: Path) -> dict:
    return run_child("benchmarks.ingest_bench", "--run-one", contender, "--file", str(path))


def dagster_overhead(folder: Path, repeat: int) -> dict:
    """Per-run cost of Dagster itself: the whole lineage, checks included, on 10 lines."""
    import warnings

    warnings.filterwarnings("ignore")
    import dagster as dg

    from event_platform.defs.ingestion.assets import LINEAGE
    from event_platform.defs.ingestion.checks import PARTITION_CHECKS
    from event_platform.defs.ingestion.partitions import event_files
    from event_platform.defs.resources import build_resources
    from event_platform.generator import generate_file
    from event_platform.settings import Settings

    os.environ["EVENT_PLATFORM_DATA_DIR"] = str(folder / "overhead")
    settings = Settings.from_env()
    generate_file(settings.landing_dir / "ten.jsonl", 10, invalid_rate=0.0, seed=1)
    timings = []
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(event_files.name, ["ten.jsonl"])
        for _ in range(repeat + 1):
            started = time.perf_counter()
            result = dg.materialize(
                [*LINEAGE, *PARTITION_CHECKS],
                instance=instance,
                partition_key="ten.jsonl",
                resources=build_resources(settings),
                run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
            )
            assert result.success
            timings.append(time.perf_counter() - started)
    cli_started = time.perf_counter()
    subprocess.run(
        [
            str(Path(sys.executable).with_name("event-platform")),
            "ingest",
            "--json",
            str(settings.landing_dir / "ten.jsonl"),
        ],
        capture_output=True,
        check=True,
        env={**os.environ},
    )
    return {
        "materialize_seconds_median": round(statistics.median(timings[1:]), 3),
        "materialize_seconds_first": round(timings[0], 3),
        "cli_process_seconds": round(time.perf_counter() - cli_started, 3),
        "steps": len(LINEAGE) + len(PARTITION_CHECKS),
        "checks": sum(len(definition.check_keys) for definition in PARTITION_CHECKS),
    }


def summarise(name: str, runs: list[dict], megabytes: float) -> dict:
    good = [run for run in runs if "error" not in run]
    if not good:
        return {"contender": name, "error": runs[0]["error"]}
    seconds = [run["seconds"] for run in good]
    median = statistics.median(seconds)
    rows = good[0]["rows"]
    return {
        "contender": name,
        "runs": len(good),
        "median_s": round(median, 3),
        "min_s": round(min(seconds), 3),
        "max_s": round(max(seconds), 3),
        "rows_per_s": round(rows / median),
        "mb_per_s": round(megabytes / median, 1),
        "peak_rss_mb": max(run["peak_rss_mb"] for run in good),
        "extrapolated": good[0].get("extrapolated", False),
        "correct": all(run.get("correct", True) for run in good),
        "checks": good[0]["checks"],
        "detail": good[-1],
    }


def markdown(report: dict) -> str:
    lines = [
        f"Ingestion benchmark, {report['lines']:,} lines ({report['megabytes']:.0f} MB, "
        f"{report['invalid_rate']:.0%} invalid), {report['machine']}, {report['when']}",
        "",
        "| contender | median s | min s | max s | rows/s | MB/s | peak RSS MB | time vs ours |",
        "|---|---|---|---|---|---|---|---|",
    ]
    # Without a successful event_platform run (failed, or not among --contenders) there is
    # nothing to compare against: the column stays empty rather than the table failing.
    ours = next((r for r in report["contenders"] if r["contender"] == "event_platform"), {})
    base = ours.get("median_s")
    for row in report["contenders"]:
        if "error" in row:
            lines.append(f"| {row['contender']} | failed: {row['error']} | | | | | | |")
            continue
        note = " (extrapolated)" if row["extrapolated"] else ""
        speed = f"{row['median_s'] / base:.2f}x" if base else ""
        lines.append(
            f"| {row['contender']}{note} | {row['median_s']} | {row['min_s']} | {row['max_s']} "
            f"| {row['rows_per_s']:,} | {row['mb_per_s']} | {row['peak_rss_mb']:.0f} "
            f"| {speed} |"
        )
    if report["ratio_vs_raw"] is None:
        lines += ["", "No ratio: it needs a successful event_platform and duckdb_read_json run."]
    else:
        lines += [
            "",
            f"Ratio event_platform / duckdb_read_json rows/s: {report['ratio_vs_raw']:.3f}",
        ]
    if report.get("memory"):
        lines += ["", "| lines | event_platform s | rows/s | peak RSS MB |", "|---|---|---|---|"]
        lines += [
            f"| {m['lines']:,} | failed: {m['error']} | | |"
            if "error" in m
            else f"| {m['lines']:,} | {m['seconds']:.1f} | {m['rows_per_s']:,} "
            f"| {m['peak_rss_mb']:.0f} |"
            for m in report["memory"]
        ]
    overhead = report.get("dagster_overhead")
    if overhead:
        lines += [
            "",
            f"Dagster per-run overhead (10-line file, {overhead['checks']} checks in "
            f"{overhead['steps']} steps, in-process executor): materialize "
            f"{overhead['materialize_seconds_median']} s median; the CLI process end to end "
            f"{overhead['cli_process_seconds']} s.",
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=positive, default=5_000_000)
    parser.add_argument("--invalid-rate", type=share, default=DEFAULT_INVALID_RATE)
    parser.add_argument("--repeat", type=positive, default=3)
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--memory-sizes", type=counts, default="1000000,5000000,10000000")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "bench_out" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "bench_out")
    parser.add_argument(
        "--overhead-repeat", type=int, default=5, help="Dagster overhead runs (0 skips them)"
    )
    parser.add_argument("--run-one", help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_one:
        run_one(args.run_one, args.file, args.file.with_name(args.file.name + ".truth.json"))
        return 0

    args.data_dir.mkdir(parents=True, exist_ok=True)
    path, _ = bench_file(args.lines, args.invalid_rate, args.data_dir)
    megabytes = path.stat().st_size / 1e6
    results = []
    for name in args.contenders.split(","):
        runs = []
        for attempt in range(args.repeat):
            print(f"{name} run {attempt + 1}/{args.repeat} ...", file=sys.stderr, flush=True)
            runs.append(measure(name, path))
        results.append(summarise(name, runs, megabytes))
    by_name = {r["contender"]: r for r in results}
    # Only two successful runs make a ratio; otherwise it is left out, not reported as 0.
    ours, raw = by_name.get("event_platform", {}), by_name.get("duckdb_read_json", {})
    ratio = None
    if "rows_per_s" in ours and "rows_per_s" in raw:
        ratio = ours["rows_per_s"] / raw["rows_per_s"]
    memory = []
    for size in args.memory_sizes:
        sized, _ = bench_file(size, args.invalid_rate, args.data_dir)
        print(f"memory run {size:,} lines ...", file=sys.stderr, flush=True)
        run = measure("event_platform", sized)
        if "error" in run:
            memory.append({"lines": size, "error": run["error"]})
            continue
        memory.append(
            {
                "lines": size,
                "seconds": run["seconds"],
                "rows_per_s": round(size / run["seconds"]),
                "peak_rss_mb": run["peak_rss_mb"],
                "correct": run["correct"],
            }
        )
    report = {
        "lines": args.lines,
        "megabytes": megabytes,
        "invalid_rate": args.invalid_rate,
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "contenders": results,
        "ratio_vs_raw": ratio,
        "memory": memory,
        "dagster_overhead": (
            dagster_overhead(args.data_dir, args.overhead_repeat) if args.overhead_repeat else None
        ),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ingest.json").write_text(json.dumps(report, indent=1, default=str))
    (args.out / "ingest.md").write_text(markdown(report))
    print(markdown(report))
    # A fast wrong answer is not a result: fail the command when our output missed the truth.
    ours = [by_name["event_platform"]] if "event_platform" in by_name else []
    wrong = [run for run in [*ours, *memory] if "error" in run or not run.get("correct", False)]
    if wrong:
        print(
            f"event_platform did not match the truth file in {len(wrong)} run(s)", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
