"""Benchmark: `/events?limit=100` on a 10M-row snapshot at 200 req/s, and the most it serves.

Builds a warehouse of N events from 100 generated files, each ingested, reconciled and its report
recorded (`ingest_file`, `reconcile_partition`, `record_report`), publishes it with the real
`publish_snapshot`, starts the real `event-platform serve --workers W` in its own
process group, and replays a pool of requests with random filters and cursors (pages anywhere in
the year) with `wrk` (Debian package `wrk`; C, so the load generator barely competes with the
server for the two cores):

- capacity: 4 connections, closed loop, as fast as the server answers;
- target: `--connections` connections, each pausing a jittered interval between requests, the
  interval calibrated once so the achieved rate is `--rate`. A connection waits for its answer
  before its next request, so a stall would under-count queueing (coordinated omission); with
  latencies far below the ~100 ms interval the effect is small, and max latency is reported.

`--generator python` instead drives a strictly open-loop schedule from an httpx client (latency
from the scheduled send time), which shares the cores with the server. Writes bench_out/api.json.

    .venv/bin/python -m benchmarks.api_bench --rows 10000000 --rate 200 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx

from benchmarks.servers import process_group, wait_until
from event_platform.api.cursor import encode_cursor
from event_platform.store.publication import publish_snapshot

ROOT = Path(__file__).resolve().parents[1]

KEY = "bench-key"
WRK_SCRIPT = Path(__file__).with_name("wrk_events.lua")
START = datetime(2019, 1, 1)
SPAN_SECONDS = 365 * 24 * 3600


def build_warehouse(path: Path, rows: int, landing: Path, files: int = 100) -> float:
    """`rows` events in `files` generated files spread over 2019, each ingested, reconciled and
    its report recorded as the lineage does, so that publication serves them all; seconds taken.
    Through the public entry points rather than SQL of its own, so the warehouse cannot drift
    from the schema publication reads."""
    from event_platform.generator import generate_file
    from event_platform.ingest.ingestion import ingest_file
    from event_platform.reconcile import reconcile_partition, record_report
    from event_platform.store.connection import connect

    started = time.monotonic()
    files = max(1, min(files, rows))
    landing.mkdir(parents=True, exist_ok=True)
    with connect(path) as con:
        for index in range(files):
            lines = rows // files + (1 if index < rows % files else 0)
            source = landing / f"file-{index:03d}.jsonl"
            generated = generate_file(
                source, lines, invalid_rate=0.0, seed=index, start_date=START.date(), days=365
            )
            ingest_file(source, con, run_id=f"bench-{index}")
            report = reconcile_partition(source, con, run_id=f"bench-{index}")
            record_report(con, report)
            if not report.passed:
                raise RuntimeError(f"{source.name} did not reconcile")
            source.unlink()
            generated.truth_path.unlink()
            print(f"  {index + 1}/{files} files", file=sys.stderr, flush=True)
    return time.monotonic() - started


def request_pool(rng: random.Random, size: int) -> list[dict[str, str]]:
    """Random filters and cursors, like clients resuming pages anywhere in the year."""
    pool = []
    for _ in range(size):
        params: dict[str, str] = {"limit": "100"}
        kind = rng.random()
        when = START + timedelta(seconds=rng.randrange(SPAN_SECONDS))
        if kind < 0.3:
            params["cursor"] = encode_cursor(when, f"{rng.getrandbits(256):064x}")
        elif kind < 0.5:
            params["event_type"] = str(rng.randint(1, 10))
            params["cursor"] = encode_cursor(when, f"{rng.getrandbits(256):064x}")
        elif kind < 0.7:
            params["event_time_from"] = when.isoformat()
        elif kind < 0.85:
            params["processing_date"] = when.date().isoformat()
        elif kind < 0.95:
            params["event_type"] = str(rng.randint(1, 10))
            params["event_time_from"] = when.isoformat()
            params["event_time_to"] = (when + timedelta(days=7)).isoformat()
        # else: the first page, no filter
        pool.append(params)
    return pool


async def drive(url: str, rate: float, seconds: float, pool: list[dict[str, str]]) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(
        base_url=url, headers={"X-API-Key": KEY}, timeout=30, limits=limits
    ) as client:

        async def one(scheduled: float, params: dict[str, str]) -> None:
            nonlocal errors
            try:
                response = await client.get("/events", params=params)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            except httpx.HTTPError:
                errors += 1
                return
            latencies.append(time.perf_counter() - scheduled)

        tasks = []
        begin = time.perf_counter()
        total = int(rate * seconds)
        for index in range(total):
            scheduled = begin + index / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(scheduled, pool[index % len(pool)])))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - begin
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e3

    return {
        "requests": total,
        "completed": len(latencies),
        "errors": errors,
        "statuses": statuses,
        "seconds": round(elapsed, 2),
        "achieved_rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(pct(0.50), 2),
        "p90_ms": round(pct(0.90), 2),
        "p99_ms": round(pct(0.99), 2),
        "max_ms": round(latencies[-1] * 1e3, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1e3, 2),
    }


def run_wrk(
    url: str, paths: Path, *, connections: int, seconds: float, interval_ms: float | None = None
) -> dict:
    env = dict(os.environ, PATHS=str(paths), API_KEY=KEY)
    if interval_ms is not None:
        env["INTERVAL_MS"] = f"{interval_ms:.3f}"
    output = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", str(WRK_SCRIPT),
         url],
        env=env, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return json.loads(output.strip().splitlines()[-1])


def paced(url: str, paths: Path, *, rate: float, connections: int, seconds: float) -> dict:
    """Calibrate the per-connection interval once (latency adds to it), then measure."""
    interval = 1000 * connections / rate
    probe = run_wrk(url, paths, connections=connections, seconds=5, interval_ms=interval)
    cycle = 1000 * connections / probe["rps"]  # interval + latency + overhead, per request
    interval = max(0.0, interval - (cycle - interval))
    result = run_wrk(url, paths, connections=connections, seconds=seconds, interval_ms=interval)
    return {**result, "connections": connections, "interval_ms": round(interval, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--generator", choices=("wrk", "python"), default="wrk")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "bench_out" / "api.json")
    args = parser.parse_args()
    if args.generator == "wrk" and shutil.which("wrk") is None:
        parser.error("wrk is not installed (apt-get install wrk), or use --generator python")

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="api-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    warehouse = workdir / "warehouse.duckdb"
    published = workdir / "published"
    build_seconds = 0.0
    if not warehouse.exists():
        print(f"building {args.rows:,} rows in {warehouse} ...", flush=True)
        build_seconds = build_warehouse(warehouse, args.rows, workdir / "landing")
    publish = publish_snapshot(warehouse, published)
    print(f"published {publish.events:,} events in {publish.seconds:.1f}s", flush=True)

    pool = request_pool(random.Random(42), 5000)  # noqa: S311 (load mix, not crypto)
    paths = workdir / "request_paths.txt"
    paths.write_text("".join(f"/events?{urlencode(params)}\n" for params in pool))
    env = dict(
        os.environ,
        EVENT_PLATFORM_DATA_DIR=str(workdir),
        EVENT_PLATFORM_DUCKDB=str(warehouse),
        EVENT_PLATFORM_API_KEYS=KEY,
    )
    serve = [sys.executable, "-m", "event_platform.cli", "serve", "--port", str(args.port),
             "--workers", str(args.workers)]  # fmt: skip
    url = f"http://127.0.0.1:{args.port}"

    def ready() -> bool:
        assert server.poll() is None, f"the server exited:\n{log.read_text()[-3000:]}"
        return httpx.get(url + "/ready", timeout=2).status_code == 200

    log = workdir / "serve.log"
    with process_group(serve, env=env, cwd=ROOT, log=log) as server:
        wait_until(ready, timeout=60, interval=0.2, what="the API server", fatal=AssertionError)
        if args.generator == "wrk":
            run_wrk(url, paths, connections=4, seconds=5)  # warm-up: open, cache, JIT-free
            capacity = run_wrk(url, paths, connections=4, seconds=args.seconds)
            target = paced(url, paths, rate=args.rate, connections=args.connections,
                           seconds=args.seconds)  # fmt: skip
            result = {"capacity_closed_loop_4_connections": capacity, "at_target_rate": target}
            p99 = target["p99_ms"]
        else:
            asyncio.run(drive(url, 20, 2, pool))  # warm-up
            result = {"at_target_rate": asyncio.run(drive(url, args.rate, args.seconds, pool))}
            p99 = result["at_target_rate"]["p99_ms"]

    report = {
        "benchmark": "GET /events?limit=100 with random filters and cursors",
        "rows": publish.events,
        "target_rps": args.rate,
        "workers": args.workers,
        "build_seconds": round(build_seconds, 1),
        "publish_seconds": round(publish.seconds, 1),
        "snapshot_bytes": publish.snapshot.stat().st_size,
        "cpus": os.cpu_count(),
        "load_generator": args.generator,
        **result,
        "target_p99_ms": 50,
        "p99_target_met": p99 < 50,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
