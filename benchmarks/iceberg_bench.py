"""The lineage on the Iceberg backend: one large file, then 1, 2 and 4 concurrent workers.

    .venv/bin/python -m benchmarks.iceberg_bench                    # 5M lines; workers on 1M each
    .venv/bin/python -m benchmarks.iceberg_bench --lines 1000000 --worker-lines 250000

Needs the `iceberg` extra and a PostgreSQL (default 127.0.0.1:5432, user postgres, trust): the
benchmark creates a database of its own for the catalog and drops it afterwards.

- **One file**: ingest, then reconcile (ledger mode) a file in a fresh process: lines/s of each
  and the process's peak RSS, after ingesting and at the end. Correct only when the stored
  events equal the truth's valid lines and the reconciliation passes.
- **Concurrent workers**: N processes each ingest a file of their own (no shared events) at
  once, into the same warehouse: total lines/s over the wall time, and the commits pyiceberg
  retried (any two commits to one table conflict, whatever their partitions) plus the
  replaces redone.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import platform
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.arguments import counts, positive
from benchmarks.bench_data import DEFAULT_INVALID_RATE, bench_file

ROOT = Path(__file__).resolve().parents[1]
POSTGRES = "postgresql://postgres@127.0.0.1:5432"


class _Retries(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "concurrent update" in record.getMessage():
            self.count += 1


def _one(catalog_uri: str, location: str, path: str, reconcile: bool, results) -> None:
    from event_platform.ingest.ingestion import ingest_file
    from event_platform.reconcile import reconcile_partition
    from event_platform.store.iceberg.warehouse import IcebergWarehouse

    retries = _Retries()
    logging.getLogger("pyiceberg").addHandler(retries)
    redone = []
    store = IcebergWarehouse(catalog_uri, location)
    started = time.perf_counter()
    result = ingest_file(
        Path(path),
        store,
        run_id=uuid.uuid4().hex,
        log=lambda line: redone.append(line) if "concurrent commit" in line else None,
    )
    ingest = time.perf_counter() - started
    figures = {
        "lines": result.lines,
        "stored": result.stored,
        "ingest_seconds": round(ingest, 2),
        "commit_retries": retries.count + len(redone),
        # Apart from the whole run's peak: the commit holds the partition as Arrow.
        "ingest_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    if reconcile:
        started = time.perf_counter()
        with store.partition(result.source_file) as con:
            report = reconcile_partition(Path(path), con, run_id="bench")
            store.record_report(con, report)
        figures["reconcile_seconds"] = round(time.perf_counter() - started, 2)
        figures["passed"] = report.passed
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    results.put(figures)


def _processes(catalog_uri: str, location: str, paths: list[Path], reconcile: bool) -> list:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [
        context.Process(target=_one, args=(catalog_uri, location, str(p), reconcile, results))
        for p in paths
    ]
    for worker in workers:
        worker.start()
    figures = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    return figures


def _catalog_database() -> tuple[str, object]:
    import psycopg2

    name = f"ep_iceberg_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(f"{POSTGRES}/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    return name, admin


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=positive, default=5_000_000)
    parser.add_argument("--worker-lines", type=positive, default=1_000_000)
    parser.add_argument("--workers", type=counts, default=[1, 2, 4])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    database, admin = _catalog_database()
    catalog_uri = f"{POSTGRES.replace('postgresql://', 'postgresql+psycopg2://')}/{database}"
    report: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    try:
        with tempfile.TemporaryDirectory(prefix="iceberg-bench-") as folder:
            path, truth = bench_file(args.lines, DEFAULT_INVALID_RATE, args.data_dir)
            print(f"one file of {args.lines:,} lines ...", file=sys.stderr)
            [one] = _processes(catalog_uri, f"{folder}/one", [path], reconcile=True)
            one["correct"] = one["stored"] == truth["valid"] and one["passed"]
            one["lines_per_second"] = round(one["lines"] / one["ingest_seconds"])
            report["one_file"] = one
            report["concurrent"] = []
            for count in args.workers:
                print(f"{count} concurrent worker(s) ...", file=sys.stderr)
                # A file of its own per worker, sharing no event (seeded by its line count).
                files = [
                    bench_file(args.worker_lines + worker, DEFAULT_INVALID_RATE, args.data_dir)[0]
                    for worker in range(count)
                ]
                started = time.perf_counter()
                figures = _processes(catalog_uri, f"{folder}/w{count}", files, reconcile=False)
                wall = time.perf_counter() - started
                report["concurrent"].append(
                    {
                        "workers": count,
                        "lines": sum(f["lines"] for f in figures),
                        "wall_seconds": round(wall, 2),
                        "lines_per_second": round(sum(f["lines"] for f in figures) / wall),
                        "commit_retries": sum(f["commit_retries"] for f in figures),
                        "peak_rss_mb": max(f["peak_rss_mb"] for f in figures),
                    }
                )
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "iceberg.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0 if report["one_file"]["correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
