"""Benchmark: `/events?limit=100` on a 10M-row snapshot at 200 req/s, and the most it serves.

Builds a warehouse of N rows with DuckDB `range()` SQL (100 files, all reconciled), publishes it
with the real `publish_snapshot`, starts the real `event-platform serve --workers W` in its own
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
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import duckdb
import httpx

from event_platform.api.cursor import encode_cursor
from event_platform.store.publication import publish_snapshot
from event_platform.store.schema import create_tables

ROOT = Path(__file__).resolve().parents[1]

KEY = "bench-key"
WRK_SCRIPT = Path(__file__).with_name("wrk_events.lua")
START = datetime(2019, 1, 1)
SPAN_SECONDS = 365 * 24 * 3600


def build_warehouse(path: Path, rows: int, files: int = 100) -> float:
    started = time.monotonic()
    con = duckdb.connect(str(path))
    create_tables(con)
    con.execute(
        f"""INSERT INTO events
            SELECT sha256(i::VARCHAR), (i % 10) + 1,
                   TIMESTAMP '2019-01-01' + to_seconds((hash(i) % {SPAN_SECONDS})::BIGINT),
                   NULL, 'user' || (i % 100000) || '@example.com',
                   '06' || lpad((i % 100000000)::VARCHAR, 8, '0'),
                   'file-' || (i % {files}) || '.jsonl', i // {files} + 1,
                   now()::TIMESTAMP, 'bench'
            FROM range({rows}) t(i)"""
    )
    con.execute("UPDATE events SET processing_date = event_time::DATE")
    con.execute(
        f"""INSERT INTO reconciliation_reports
            SELECT 'file-' || f || '.jsonl', 'sha', {rows // files}, {rows // files}, 0, 0,
                   {rows // files}, 0, 0, 0, true, now()::TIMESTAMP, 'bench'
            FROM range({files}) t(f)"""
    )
    con.close()
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
        build_seconds = build_warehouse(warehouse, args.rows)
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
    server = subprocess.Popen(
        [sys.executable, "-m", "event_platform.cli", "serve", "--port", str(args.port),
         "--workers", str(args.workers)],
        env=env, cwd=ROOT, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{args.port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not become ready")
            time.sleep(0.2)
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
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

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
