"""Does a partition's work slow down as the warehouse grows? One file into warehouses of N events.

    .venv/bin/python -m benchmarks.warehouse_scale [--lines 1000000] \
        [--stored 0,20000000,100000000] [--repeat 2] [--file-events 100000]

Everything a partition does filters the warehouse by `source_file`: the writer's delete and
duplicate search, reconciliation, the counts. This ingests the same generated file (2% invalid
lines, and by default 1% of lines repeating an earlier line of the file) into copies of
warehouses that already hold N events, then reconciles it, and does the same for a small file
(`--small-lines`), so both the per-line and the per-partition costs show. It reports seconds
per N for each. Then a second small file, with events of its own, runs through Dagster's
lineage and partition checks on that warehouse, each step on a connection of its own as in a
user's run. Last, unless `--no-publish`, the API's snapshot is published from that warehouse, as
the publication sensor does after a reconciliation: publication copies every reconciled file's
events, so its cost follows the warehouse, not the file.

The stored events are synthetic (made in SQL, each with its real sha256 `event_hash` and
`event_hash_keys` entry, each file with its `ingestions` row and a passing reconciliation
report, so that publication serves it), spread over files of `--file-events` events whose names
share a long prefix with the ingested files' (`events-2026-...`), as landed files' names do.
They are written with SQL into the warehouse's tables rather than ingested, because generating
and ingesting 100M lines would take far longer than the one statement per 10M events. DuckDB's
zone maps keep only the first 8 bytes of a string, so such names cannot be skipped by name
alone. Warehouses are built once per (N, file size) and cached in `bench_out/scale/`; every run
works on a fresh copy. Each run's counts are checked against the generator's truth file (no
synthetic event equals a generated one, so the file's own repeats are the only duplicates) and
reconciliation must pass. Results go to `bench_out/warehouse_scale.json` and `.md`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

from benchmarks.arguments import counts, positive, share
from benchmarks.bench_data import flushed_copy
from benchmarks.child import cpu_seconds
from event_platform.contract import EVENTS_CONTRACT
from event_platform.defs.ingestion.assets import LINEAGE
from event_platform.defs.ingestion.checks import PARTITION_CHECKS
from event_platform.defs.ingestion.partitions import event_files
from event_platform.defs.resources import build_resources
from event_platform.generator import generate_file
from event_platform.ingest.ingestion import ingest_file
from event_platform.reconcile import reconcile_partition, record_report
from event_platform.settings import Settings
from event_platform.store.connection import connect
from event_platform.store.counts import partition_counts
from event_platform.store.publication import publish_snapshot
from event_platform.store.schema import hash_key_sql

ROOT = Path(__file__).resolve().parents[1]

# Landed files' names share a long prefix; the ingested files get one too.
NAME_PREFIX = "events-2026-"
BATCH = 10_000_000  # rows per INSERT while building a warehouse


def build_warehouse(path: Path, stored: int, file_events: int) -> None:
    """A warehouse holding `stored` synthetic events; built under a temporary name, then moved."""
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    started = time.perf_counter()
    with connect(partial) as con:
        for low in range(0, stored, BATCH):
            high = min(stored, low + BATCH)
            # Emails of another domain than the generator's, so no synthetic event equals one
            # of the file's.
            con.execute(
                f"""
                INSERT INTO main.events (event_hash, event_type, event_time, processing_date,
                                         user_email, phone_number, source_file, line_number,
                                         ingested_at, run_id)
                SELECT sha256({EVENTS_CONTRACT.canonical_sql}), event_type, event_time,
                       processing_date, user_email, phone_number,
                       '{NAME_PREFIX}01-01-' || lpad((i // {file_events})::VARCHAR, 6, '0')
                           || '.jsonl',
                       i % {file_events} + 1,
                       TIMESTAMP '2026-01-01', 'synthetic'
                FROM (
                    SELECT i, (i % 10 + 1)::INTEGER AS event_type,
                           TIMESTAMP '2020-01-01' + to_seconds(i % 100000000) AS event_time,
                           (TIMESTAMP '2020-01-01' + to_seconds(i % 100000000))::DATE
                               AS processing_date,
                           'seed' || i || '@synthetic.invalid' AS user_email,
                           lpad((i % 1000000000)::VARCHAR, 10, '0') AS phone_number
                    FROM range($low, $high) t(i)
                )
                """,
                {"low": low, "high": high},
            )
            print(f"  {high:,} / {stored:,} events", file=sys.stderr, flush=True)
        con.execute(
            "INSERT INTO main.event_hash_keys "
            f"SELECT source_file, {hash_key_sql('event_hash')} FROM main.events"
        )
        # Each file stored and reconciled, so publication serves its events as a landed file's.
        con.execute(
            """
            INSERT INTO main.ingestions BY NAME
            SELECT source_file, 'synthetic' AS run_id, 'synthetic' AS file_sha256,
                   count(*) AS lines_total, count(*) AS stored, 0 AS rejected, 0 AS duplicates,
                   TIMESTAMP '2026-01-01' AS ingested_at
            FROM main.events GROUP BY source_file
            """
        )
        con.execute(
            """
            INSERT INTO main.reconciliation_reports BY NAME
            SELECT source_file, file_sha256, lines_total, stored AS valid, rejected, duplicates,
                   stored AS stored_rows, 0 AS missing_rows, 0 AS unexpected_rows,
                   0 AS mismatched_rows, true AS passed, TIMESTAMP '2026-01-02' AS checked_at,
                   'synthetic' AS run_id, run_id AS ingest_run_id
            FROM main.ingestions
            """
        )
        con.execute("CHECKPOINT")
    partial.rename(path)
    print(f"  built in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)


def run_once(
    base: Path | None,
    files: dict[str, Path],
    dagster_file: tuple[Path, dict],
    scratch: Path,
    *,
    publish: bool,
) -> dict[str, dict]:
    """Ingest then reconcile each file into one fresh copy of the warehouse, run the Dagster
    file through the lineage there, then publish; time each step."""
    database = scratch / "warehouse.duckdb"
    if base is not None:
        flushed_copy(base, database)
    timings: dict[str, dict] = {}
    with connect(database) as con:
        for label, source in files.items():
            partition = f"{NAME_PREFIX}11-24-{label}.jsonl"
            started = time.perf_counter()
            result = ingest_file(source, con, run_id="scale", source_file=partition)
            ingested = time.perf_counter()
            report = reconcile_partition(source, con, run_id="scale", source_file=partition)
            record_report(con, report)  # as the lineage does; publication serves what passed
            timings[label] = {
                "ingest_s": ingested - started,
                "reconcile_s": time.perf_counter() - ingested,
                "result": result,
                "reconciled": report.passed,
            }
    timings["dagster"] = dagster_run(database, *dagster_file, scratch)
    if publish:
        timings["publication"] = publication_run(database, scratch / "published")
    return timings


def publication_run(database: Path, published_dir: Path) -> dict:
    """One publication of the API's snapshot from the warehouse, as the sensor's run does it."""
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    result = publish_snapshot(database, published_dir)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "cpu_s": cpu_seconds() - cpu_before,
        "events": result.events,
        "files": result.files_published,
        "snapshot_mb": result.snapshot.stat().st_size / 1e6,
    }


def dagster_run(database: Path, source: Path, truth: dict, scratch: Path) -> dict:
    """A file of its own as a user's run does it: the lineage and every partition check, each
    step on its own short-lived connection, through Dagster (in-process executor)."""
    data_dir = scratch / "data"
    (data_dir / "landing").mkdir(parents=True)
    partition = f"{NAME_PREFIX}11-24-dagster.jsonl"
    shutil.copyfile(source, data_dir / "landing" / partition)
    settings = Settings.from_env(
        {"EVENT_PLATFORM_DATA_DIR": str(data_dir), "EVENT_PLATFORM_DUCKDB": str(database)}
    )
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(event_files.name, [partition])
        started = time.perf_counter()
        result = dg.materialize(
            [*LINEAGE, *PARTITION_CHECKS],
            instance=instance,
            partition_key=partition,
            resources=build_resources(settings),
        )
        seconds = time.perf_counter() - started
    steps = {
        event.step_key: event.event_specific_data.duration_ms / 1000
        for event in result.get_step_success_events()
    }
    # The generator's 2% invalid lines are above the rejection-rate warning line, so that
    # check warns by design; every other check must pass.
    failed = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    with connect(database, read_only=True) as con:
        stored, _, duplicates = partition_counts(con, partition)
    passed = (
        result.success
        and failed <= {"rejection_rate"}
        and (stored, duplicates) == (truth["valid"], truth["duplicates"])
    )
    return {"seconds": seconds, "steps": steps, "passed": passed}


def _generated(
    data_dir: Path, lines: int, duplicate_rate: float, seed: int | None = None
) -> tuple[Path, dict]:
    seed = lines if seed is None else seed
    source = data_dir / f"scale-{lines}-dup{duplicate_rate:g}-seed{seed}.jsonl"
    truth_path = source.with_name(source.name + ".truth.json")
    if not truth_path.exists():
        generate_file(source, lines, invalid_rate=0.02, duplicate_rate=duplicate_rate, seed=seed)
    return source, json.loads(truth_path.read_text())


def _median_row(stored: int, label: str, truth: dict, runs: list[dict]) -> dict:
    row: dict[str, object] = {"stored_events": stored, "file": label, "lines": truth["lines"]}
    for step in ("ingest_s", "reconcile_s"):
        values = [run[step] for run in runs]
        row[step] = round(statistics.median(values), 2)
        row[step.replace("_s", "_min_s")] = round(min(values), 2)
        row[step.replace("_s", "_max_s")] = round(max(values), 2)
    total = statistics.median(run["ingest_s"] + run["reconcile_s"] for run in runs)
    row["total_s"] = round(total, 2)
    row["rows_per_s"] = round(truth["lines"] / total)
    row["correct"] = all(run["correct"] for run in runs)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=positive, default=1_000_000)
    parser.add_argument("--small-lines", type=positive, default=1_000)
    parser.add_argument(
        "--stored",
        type=counts,
        default="0,20000000,100000000",
        help="events already in the warehouse, one run per value",
    )
    parser.add_argument("--repeat", type=positive, default=2)
    parser.add_argument(
        "--file-events",
        type=positive,
        default=100_000,
        help="synthetic events per stored file (100M events: 1,000 files)",
    )
    parser.add_argument(
        "--duplicate-rate",
        type=share,
        default=0.01,
        help="share of lines that repeat an earlier line of the file (generator's option)",
    )
    parser.add_argument(
        "--no-publish",
        dest="publish",
        action="store_false",
        help="skip the publication after each run (it copies the whole warehouse)",
    )
    parser.add_argument("--data-dir", type=Path, default=ROOT / "bench_out" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "bench_out")
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    cache = args.out / "scale"
    cache.mkdir(parents=True, exist_ok=True)
    generated = {
        "large": _generated(args.data_dir, args.lines, args.duplicate_rate),
        "small": _generated(args.data_dir, args.small_lines, args.duplicate_rate),
    }
    files = {label: source for label, (source, _) in generated.items()}
    # The Dagster run needs events of its own: a copy of the small file would be all
    # duplicates of the small partition and store nothing.
    dagster_file = _generated(
        args.data_dir, args.small_lines, args.duplicate_rate, seed=args.small_lines + 1
    )

    # Every file of a run passes reconciliation, so publication serves all of their events.
    fresh_events = sum(truth["valid"] for _, truth in [*generated.values(), dagster_file])
    rows = []
    dagster_rows = []
    publication_rows = []
    for stored in args.stored:
        base = None
        if stored:
            base = cache / f"warehouse-{stored}-per{args.file_events}-reconciled.duckdb"
            if not base.exists():
                print(f"building a warehouse of {stored:,} events ...", file=sys.stderr)
                build_warehouse(base, stored, args.file_events)
        runs: dict[str, list[dict]] = {label: [] for label in files}
        dagster_runs: list[dict] = []
        publication_runs: list[dict] = []
        for attempt in range(args.repeat):
            with tempfile.TemporaryDirectory(dir=args.out) as scratch:
                timings = run_once(base, files, dagster_file, Path(scratch), publish=args.publish)
            if args.publish:
                publication = timings.pop("publication")
                publication["correct"] = (publication["events"], publication["files"]) == (
                    stored + fresh_events,
                    -(-stored // args.file_events) + len(files) + 1,
                )
                publication_runs.append(publication)
                print(
                    f"stored {stored:,}, publication: run {attempt + 1} "
                    f"{publication['seconds']:.2f} s, {publication['events']:,} events, "
                    f"correct={publication['correct']}",
                    file=sys.stderr,
                    flush=True,
                )
            dagster = timings.pop("dagster")
            dagster_runs.append(dagster)
            print(
                f"stored {stored:,}, small file through Dagster: run {attempt + 1} "
                f"{dagster['seconds']:.2f} s, as expected={dagster['passed']}",
                file=sys.stderr,
                flush=True,
            )
            for label, timing in timings.items():
                truth = generated[label][1]
                result = timing["result"]
                timing["correct"] = timing["reconciled"] and (
                    result.stored,
                    result.duplicates,
                ) == (truth["valid"], truth["duplicates"])
                runs[label].append(timing)
                print(
                    f"stored {stored:,}, {label} file: run {attempt + 1} ingest "
                    f"{timing['ingest_s']:.2f} s, reconcile {timing['reconcile_s']:.2f} s, "
                    f"correct={timing['correct']}",
                    file=sys.stderr,
                    flush=True,
                )
        for label in files:
            rows.append(_median_row(stored, label, generated[label][1], runs[label]))
        steps = {
            step: round(statistics.median(run["steps"].get(step, 0.0) for run in dagster_runs), 2)
            for step in dagster_runs[0]["steps"]
        }
        dagster_rows.append(
            {
                "stored_events": stored,
                "median_s": round(statistics.median(r["seconds"] for r in dagster_runs), 2),
                "slowest_steps": dict(sorted(steps.items(), key=lambda kv: -kv[1])[:3]),
                "correct": all(r["passed"] for r in dagster_runs),
            }
        )
        if publication_runs:
            publication_rows.append(
                {
                    "stored_events": stored,
                    "events": publication_runs[0]["events"],
                    "median_s": round(statistics.median(r["seconds"] for r in publication_runs), 2),
                    "min_s": round(min(r["seconds"] for r in publication_runs), 2),
                    "max_s": round(max(r["seconds"] for r in publication_runs), 2),
                    "cpu_s": round(statistics.median(r["cpu_s"] for r in publication_runs), 2),
                    "snapshot_mb": round(publication_runs[0]["snapshot_mb"]),
                    "correct": all(r["correct"] for r in publication_runs),
                }
            )

    lines = [
        f"One file ingested, then reconciled, into a warehouse already holding N events in files "
        f"of {args.file_events:,} (median of {args.repeat}; min-max in brackets)",
        "",
        "| stored events N | file | lines | ingest s | reconcile s | total s | rows/s | correct |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['stored_events']:,} | {row['file']} | {row['lines']:,} | "
            f"{row['ingest_s']:.2f} ({row['ingest_min_s']:.2f}-{row['ingest_max_s']:.2f}) | "
            f"{row['reconcile_s']:.2f} ({row['reconcile_min_s']:.2f}-"
            f"{row['reconcile_max_s']:.2f}) | {row['total_s']:.2f} | {row['rows_per_s']:,} | "
            f"{row['correct']} |"
        )
    lines += [
        "",
        f"Another {dagster_file[1]['lines']:,}-line file (its own events) through Dagster: the "
        f"lineage and {sum(len(d.check_keys) for d in PARTITION_CHECKS)} partition checks, "
        "in-process executor (median). "
        "As expected: the run succeeded, every check but the rejection rate passed, and the "
        "partition holds the truth's valid and duplicate counts.",
        "",
        "| stored events N | seconds | slowest steps (s) | as expected |",
        "|---|---|---|---|",
    ]
    for row in dagster_rows:
        slowest = ", ".join(f"{step} {s:.2f}" for step, s in row["slowest_steps"].items())
        lines.append(
            f"| {row['stored_events']:,} | {row['median_s']:.2f} | {slowest} | {row['correct']} |"
        )
    if publication_rows:
        lines += [
            "",
            "Then the API's snapshot published from that warehouse, as the publication sensor "
            "does after a reconciliation (median). Correct: it holds every stored event and "
            "every file, all reconciled.",
            "",
            "| stored events N | events published | seconds | CPU s | snapshot MB | correct |",
            "|---|---|---|---|---|---|",
        ]
        for row in publication_rows:
            lines.append(
                f"| {row['stored_events']:,} | {row['events']:,} | {row['median_s']:.2f} "
                f"({row['min_s']:.2f}-{row['max_s']:.2f}) | {row['cpu_s']:.2f} | "
                f"{row['snapshot_mb']:,} | {row['correct']} |"
            )
    markdown = "\n".join(lines) + "\n"
    report = {"files": rows, "dagster": dagster_rows, "publication": publication_rows}
    (args.out / "warehouse_scale.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "warehouse_scale.md").write_text(markdown)
    print(markdown)
    everything = [*rows, *dagster_rows, *publication_rows]
    return 0 if all(row["correct"] for row in everything) else 1


if __name__ == "__main__":
    raise SystemExit(main())
