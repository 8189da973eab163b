"""Benchmark: `/events?limit=100` on a 10M-row snapshot at a fixed 200 req/s.

Builds a warehouse of N rows with DuckDB `range()` SQL (100 files, all reconciled), publishes it
with the real `publish_snapshot`, starts the real server (uvicorn in its own process), and drives
an OPEN-loop load (requests are sent on a fixed schedule whether or not earlier ones finished,
and latency is measured from the scheduled send time, so a slow server cannot hide queueing)
with random filters and random cursors. Writes bench_out/api.json.

    .venv/bin/python benchmarks/api_bench.py --rows 10000000 --rate 200 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from event_platform.api.cursor import encode_cursor  # noqa: E402
from event_platform.publishing import publish_snapshot  # noqa: E402
from event_platform.store.schema import create_tables  # noqa: E402

KEY = "bench-key"
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "bench_out" / "api.json")
    args = parser.parse_args()

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

    env = dict(
        os.environ,
        EVENT_PLATFORM_DATA_DIR=str(workdir),
        EVENT_PLATFORM_DUCKDB=str(warehouse),
        EVENT_PLATFORM_API_KEYS=KEY,
    )
    server = subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "--factory", "event_platform.api.app:app_from_env",
            "--host", "127.0.0.1", "--port", str(args.port), "--no-access-log",
            "--log-level", "warning",
        ],
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{args.port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not become ready")
            time.sleep(0.2)
        pool = request_pool(random.Random(42), 5000)  # noqa: S311 (load mix, not crypto)
        asyncio.run(drive(url, 20, 2, pool))  # warm-up
        result = asyncio.run(drive(url, args.rate, args.seconds, pool))
    finally:
        server.terminate()
        server.wait(timeout=20)

    report = {
        "benchmark": "GET /events?limit=100 with random filters and cursors, open loop",
        "rows": publish.events,
        "target_rps": args.rate,
        "build_seconds": round(build_seconds, 1),
        "publish_seconds": round(publish.seconds, 1),
        "snapshot_bytes": publish.snapshot.stat().st_size,
        "cpus": os.cpu_count(),
        "load_generator": "python httpx.AsyncClient, same machine (shares the 2 cores)",
        **result,
        "target_p99_ms": 50,
        "p99_target_met": result["p99_ms"] < 50,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
