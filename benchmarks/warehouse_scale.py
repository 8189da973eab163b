"""Does ingesting one file slow down as the warehouse grows? One file into warehouses of N events.

    .venv/bin/python benchmarks/warehouse_scale.py [--lines 1000000] \
        [--stored 0,20000000,100000000] [--repeat 2]

The duplicate search is the one part of ingestion whose cost depends on what is already stored,
not on the file. This ingests the same generated file (2% invalid lines, and by default 1% of
lines repeating an earlier line of the file) into copies of warehouses that already hold N
events, and reports seconds and rows/s per N. The stored events are synthetic (made in SQL,
each with its real sha256 `event_hash` and `event_hash_keys` entry, spread over files of 5M
events), built once per N and cached in `bench_out/scale/`; every run works on a fresh copy.
Each run's counts are checked against the generator's truth file: no synthetic event equals a
generated one, so the file's own repeats are the only duplicates. Results go to
`bench_out/warehouse_scale.json` and `.md`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from event_platform.contract import EVENTS_CONTRACT  # noqa: E402
from event_platform.generator import generate_file  # noqa: E402
from event_platform.ingestion import ingest_file  # noqa: E402
from event_platform.store.connection import connect  # noqa: E402
from event_platform.store.schema import hash_key_sql  # noqa: E402

FILE_EVENTS = 5_000_000  # synthetic events per synthetic source file
BATCH = 10_000_000  # rows per INSERT while building a warehouse


def build_warehouse(path: Path, stored: int) -> None:
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
                INSERT INTO main.events
                SELECT sha256({EVENTS_CONTRACT.canonical_sql}), event_type, event_time,
                       processing_date, user_email, phone_number,
                       'synthetic-' || (i // {FILE_EVENTS}) || '.jsonl', i % {FILE_EVENTS} + 1,
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
        con.execute("CHECKPOINT")
    partial.rename(path)
    print(f"  built in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)


def run_once(base: Path | None, source: Path, scratch: Path) -> dict:
    database = scratch / "warehouse.duckdb"
    if base is not None:
        shutil.copyfile(base, database)
        # Flushed before the clock starts: otherwise the copy's writeback competes with the run.
        with database.open("rb+") as handle:
            os.fsync(handle.fileno())
    with connect(database) as con:
        started = time.perf_counter()
        result = ingest_file(source, con, run_id="scale")
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "result": result}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--stored", default="0,20000000,100000000")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--duplicate-rate",
        type=float,
        default=0.01,
        help="share of lines that repeat an earlier line of the file (generator's option)",
    )
    parser.add_argument("--data-dir", type=Path, default=ROOT / "bench_out" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "bench_out")
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    cache = args.out / "scale"
    cache.mkdir(parents=True, exist_ok=True)
    source = args.data_dir / f"scale-{args.lines}-dup{args.duplicate_rate:g}.jsonl"
    truth_path = source.with_name(source.name + ".truth.json")
    if not truth_path.exists():
        generate_file(
            source,
            args.lines,
            invalid_rate=0.02,
            duplicate_rate=args.duplicate_rate,
            seed=args.lines,
        )
    truth = json.loads(truth_path.read_text())

    rows = []
    for stored in [int(n) for n in args.stored.split(",") if n.strip()]:
        base = None
        if stored:
            base = cache / f"warehouse-{stored}.duckdb"
            if not base.exists():
                print(f"building a warehouse of {stored:,} events ...", file=sys.stderr)
                build_warehouse(base, stored)
        runs = []
        for attempt in range(args.repeat):
            with tempfile.TemporaryDirectory(dir=args.out) as scratch:
                run = run_once(base, source, Path(scratch))
            result = run["result"]
            correct = (result.stored, result.duplicates) == (truth["valid"], truth["duplicates"])
            runs.append({"seconds": run["seconds"], "correct": correct})
            print(
                f"stored {stored:,}: run {attempt + 1} {run['seconds']:.2f} s, correct={correct}",
                file=sys.stderr,
                flush=True,
            )
        seconds = statistics.median(r["seconds"] for r in runs)
        rows.append(
            {
                "stored_events": stored,
                "lines": truth["lines"],
                "median_s": round(seconds, 2),
                "min_s": round(min(r["seconds"] for r in runs), 2),
                "max_s": round(max(r["seconds"] for r in runs), 2),
                "rows_per_s": round(truth["lines"] / seconds),
                "correct": all(r["correct"] for r in runs),
            }
        )

    lines = [
        f"Ingest {truth['lines']:,} lines ({truth['duplicates']:,} repeat an earlier line) into a "
        f"warehouse already holding N events (median of {args.repeat})",
        "",
        "| stored events N | median s | min s | max s | rows/s | counts match truth |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['stored_events']:,} | {row['median_s']:.2f} | {row['min_s']:.2f} | "
            f"{row['max_s']:.2f} | {row['rows_per_s']:,} | {row['correct']} |"
        )
    markdown = "\n".join(lines) + "\n"
    (args.out / "warehouse_scale.json").write_text(json.dumps(rows, indent=2) + "\n")
    (args.out / "warehouse_scale.md").write_text(markdown)
    print(markdown)
    return 0 if all(row["correct"] for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
