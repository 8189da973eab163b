"""Pub/Sub source throughput and latency against the local emulator.

Run from the repo root:  .venv/bin/python -m benchmarks.pubsub_bench [--messages 100000]

Phases, each on a fresh topic/subscription:
  1. publish N event lines with the batching publisher (`publish_lines`, as `event-platform
     publish` does): publish msgs/s;
  2. drain the backlog to landing files (`drain`, as the sensor does): drain msgs/s and the
     publish-time -> file-renamed latency; with a full backlog this mostly measures queueing;
  3. live: publish M more while a consumer drains concurrently: the latency a caught-up
     consumer adds (p50/p90 from message.publish_time to the batch file's rename);
  4. ingest the phase-2 files with the core `ingest_file` into a fresh DuckDB: ingest msgs/s
     and publish-time -> queryable (ingest commit) latency for the backlog.
Starts its own emulator unless PUBSUB_EMULATOR_HOST is set. Writes bench_out/pubsub.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from event_platform.pubsub.admin import publish_lines, setup
from event_platform.pubsub.consumer import drain, make_subscriber
from event_platform.settings import PubSubSettings, Settings

ROOT = Path(__file__).resolve().parent.parent


def event_lines(count: int, offset: int = 0) -> list[bytes]:
    return [
        json.dumps(
            {
                "event_type": 1 + i % 10,
                "event_time": f"2024-01-{1 + i % 28:02d} 12:{i % 60:02d}:{(i // 60) % 60:02d}",
                "data": {"user_email": f"user{i}@example.com", "phone_number": f"06{i:08d}"},
                "processing_date": f"2024-01-{1 + i % 28:02d}",
            }
        ).encode()
        for i in range(offset, offset + count)
    ]


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p90": 0.0, "max": 0.0}
    q = statistics.quantiles(values, n=10, method="inclusive")
    return {"p50": statistics.median(values), "p90": q[8], "max": max(values)}


def fresh_settings(base: PubSubSettings, landing: Path) -> PubSubSettings:
    suffix = uuid.uuid4().hex[:8]
    settings = replace(
        base,
        topic=f"bench-{suffix}",
        subscription=f"bench-sub-{suffix}",
        landing_dir=landing,
        dead_letter_topic=None,
    )
    setup(settings)
    return settings


def run(messages: int, live_messages: int, work: Path) -> dict[str, object]:
    base = Settings.from_env({"EVENT_PLATFORM_DATA_DIR": str(work)}).pubsub
    result: dict[str, object] = {
        "messages": messages,
        "batch_max_messages": base.batch_max_messages,
    }

    # 1. publish
    settings = fresh_settings(base, work / "landing-backlog")
    pub = publish_lines(settings.project, settings.topic, iter(event_lines(messages)))
    result["publish"] = {
        "messages": pub.published,
        "seconds": pub.seconds,
        "msgs_per_s": pub.per_second,
    }

    # 2. drain the backlog
    latencies: list[float] = []
    batch_publish_times: list[list[float]] = []  # in drain order, like stats.files

    def on_written(batch, at: float) -> None:
        times = [m.message.publish_time.timestamp() for m in batch]
        batch_publish_times.append(times)
        latencies.extend(at - t for t in times)

    stats = drain(make_subscriber(), settings, max_seconds=600, on_written=on_written)
    assert stats.pulled == stats.acked == messages, stats.summary()
    result["drain"] = {
        "messages": stats.pulled,
        "files": len(stats.files),
        "seconds": stats.seconds,
        "msgs_per_s": stats.pulled / stats.seconds,
        "latency_publish_to_file_s": percentiles(latencies),
    }

    # 3. live: publisher and consumer at the same time
    live = fresh_settings(base, work / "landing-live")
    live_lat: list[float] = []
    done = threading.Event()

    def consume() -> None:
        sub = make_subscriber()
        give_up = time.monotonic() + 600
        while time.monotonic() < give_up:
            drain(
                sub,
                live,
                max_seconds=5,
                on_written=lambda b, at: live_lat.extend(
                    at - m.message.publish_time.timestamp() for m in b
                ),
            )
            if done.is_set() and len(live_lat) >= live_messages:
                break

    consumer = threading.Thread(target=consume)
    consumer.start()
    started = time.monotonic()
    live_pub = publish_lines(live.project, live.topic, iter(event_lines(live_messages, messages)))
    done.set()
    consumer.join(timeout=120)
    result["live"] = {
        "messages": live_pub.published,
        "publish_msgs_per_s": live_pub.per_second,
        "end_to_end_seconds": time.monotonic() - started,
        "latency_publish_to_file_s": percentiles(live_lat),
    }

    # 4. ingest phase-2 files into DuckDB (core ingest), if available
    try:
        from event_platform.ingest.ingestion import ingest_file
        from event_platform.store.connection import connect
    except ImportError as exc:
        result["ingest"] = {"skipped": f"core ingest not importable: {exc}"}
        return result
    queryable: list[float] = []
    started = time.monotonic()
    with connect(work / "bench.duckdb") as con:
        for name, publish_times in zip(stats.files, batch_publish_times, strict=True):
            ingest_file(settings.landing_dir / name, con, run_id="bench")
            at = time.time()
            queryable.extend(at - t for t in publish_times)
        stored = con.execute("SELECT count(*) FROM events").fetchone()[0]
    seconds = time.monotonic() - started
    result["ingest"] = {
        "files": len(stats.files),
        "stored_events": stored,
        "seconds": seconds,
        "msgs_per_s": messages / seconds,
        "latency_publish_to_queryable_s": percentiles(queryable),
    }
    return result


def table(result: dict[str, object]) -> str:
    d, lv = result["drain"], result["live"]
    rows = [
        ("publish (batched publisher)", f"{result['publish']['msgs_per_s']:,.0f} msgs/s", ""),
        (
            "drain backlog -> landing files",
            f"{d['msgs_per_s']:,.0f} msgs/s",
            "p50 {p50:.2f}s p90 {p90:.2f}s".format(**d["latency_publish_to_file_s"]),
        ),
        (
            "live publish+consume",
            f"{lv['publish_msgs_per_s']:,.0f} msgs/s pub",
            "p50 {p50:.2f}s p90 {p90:.2f}s".format(**lv["latency_publish_to_file_s"]),
        ),
    ]
    ing = result.get("ingest", {})
    if "msgs_per_s" in ing:
        rows.append(
            (
                "ingest landing files -> DuckDB",
                f"{ing['msgs_per_s']:,.0f} msgs/s",
                "queryable p50 {p50:.2f}s p90 {p90:.2f}s".format(
                    **ing["latency_publish_to_queryable_s"]
                ),
            )
        )
    width = max(len(r[0]) for r in rows)
    lines = [f"{'phase':<{width}}  {'throughput':>20}  latency (publish_time -> ...)"]
    lines += [f"{a:<{width}}  {b:>20}  {c}" for a, b, c in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--live-messages", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench_out" / "pubsub.json")
    args = parser.parse_args()
    with ExitStack() as stack:
        if not os.environ.get("PUBSUB_EMULATOR_HOST"):
            from benchmarks.servers import running_emulator

            os.environ["PUBSUB_EMULATOR_HOST"] = stack.enter_context(running_emulator())
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pubsub-bench-")))
        result = run(args.messages, args.live_messages, work)
    result["emulator"] = "gcloud beta emulators pubsub (local, single JVM)"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(table(result))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
