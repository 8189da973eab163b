"""Latency from a file landing to its reconciliation check result, with the sensor running.

    .venv/bin/python -m benchmarks.latency_bench [--files 20]

Starts a real `dagster dev` (webserver + daemon, 127.0.0.1, temporary DAGSTER_HOME and data
folder), drops small generated files one at a time (write, then rename into landing/), and reads
back through GraphQL when `reconciliation_exact` was evaluated for each file's partition. Each
latency is split with the run's own timestamps into: sensor pickup (landing -> run created),
launch (created -> started: queue and process start) and execution (started -> check result).
It also times what one sensor tick spends listing a landing folder of `--listing-files` files.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.servers import dagster_dev, graphql, wait_until
from event_platform.generator import generate_file
from event_platform.ingest.landing import landed_files

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
query($partition: String) {
  assetCheckExecutions(assetKey: {path: ["reconciliation_report"]},
                       checkName: "reconciliation_exact", partition: $partition, limit: 1) {
    runId evaluation { timestamp success }
  }
}
"""
RUN = """
query($id: ID!) { runOrError(runId: $id) { ... on Run { creationTime startTime endTime } } }
"""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def listing_seconds(files: int) -> float:
    """What one sensor tick spends listing a landing folder of `files` files (best of 3)."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for index in range(files):
            (folder / f"landed-{index:07d}.jsonl").touch()
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            listed = len(landed_files(folder))
            runs.append(time.perf_counter() - started)
        assert listed == files
    return min(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--lines", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "bench_out")
    parser.add_argument(
        "--listing-files", type=int, default=100_000, help="landing folder size for the tick cost"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "data"
        (data / "landing").mkdir(parents=True)
        samples = []
        with dagster_dev(Path(scratch), data, ROOT) as port:
            for index in range(args.files):
                name = f"latency-{index:03d}.jsonl"
                staged = data / "landing" / f".{name}.tmp"
                generate_file(staged, args.lines, invalid_rate=0.0, seed=index)
                staged.with_name(staged.name + ".truth.json").unlink()
                landed = time.time()
                os.replace(staged, data / "landing" / name)

                def evaluated(partition: str = name):
                    found = graphql(port, CHECK, {"partition": partition})
                    return found["assetCheckExecutions"][0]["evaluation"] and found

                found = wait_until(evaluated, timeout=180, interval=0.2, what=name)
                execution = found["assetCheckExecutions"][0]
                run = graphql(port, RUN, {"id": execution["runId"]})["runOrError"]
                checked = execution["evaluation"]["timestamp"]
                samples.append(
                    {
                        "file": name,
                        "total_s": checked - landed,
                        "sensor_pickup_s": run["creationTime"] - landed,
                        "launch_s": run["startTime"] - run["creationTime"],
                        "execution_s": checked - run["startTime"],
                        "passed": execution["evaluation"]["success"],
                    }
                )
                print(f"{name}: {samples[-1]['total_s']:.2f}s", file=sys.stderr, flush=True)
    summary = {
        part: {
            "p50": round(percentile([s[part] for s in samples], 0.5), 2),
            "p90": round(percentile([s[part] for s in samples], 0.9), 2),
            "mean": round(statistics.mean(s[part] for s in samples), 2),
        }
        for part in ("total_s", "sensor_pickup_s", "launch_s", "execution_s")
    }
    report = {
        "files": args.files,
        "lines_per_file": args.lines,
        "summary": summary,
        "all_passed": all(s["passed"] for s in samples),
        "sensor_listing": {
            "files": args.listing_files,
            "seconds": round(listing_seconds(args.listing_files), 3),
        },
        "samples": samples,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latency.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({**summary, "sensor_listing": report["sensor_listing"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
