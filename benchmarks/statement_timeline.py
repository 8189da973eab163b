"""Where one ingestion's time goes, statement by statement, and what of it grows with the file.

    .venv/bin/python -m benchmarks.statement_timeline [--lines 5000000] [--parts 10] \
        [--warehouse PATH] [--probe-keys-limit N] [--chunk-bytes N]

Ingests one generated file (no reconciliation) through a connection that times every SQL
statement the writer sends. The file's chunks are split into `--parts` equal parts; each part
reports its lines/s, the process's CPU seconds and the statements that took longest. A rate
that falls from part to part is a cost that grows with the file, and the statements say which.
The first part also holds opening the warehouse, starting the validating workers and the
DELETEs that clear the partition's old rows, so on a small file its rate reads low. The
statements after the last chunk (the settle of duplicates, the keys published, COMMIT) are
listed apart.

`--warehouse` ingests into a fresh copy of an existing warehouse (`warehouse_scale.py` caches
some in `bench_out/scale/`), under a name that shares the stored files' prefix, to see which
statements grow with what is already stored. `--probe-keys-limit` overrides the writer's
`PROBE_KEYS_LIMIT` for the run: a module constant of the writer, since no public option sets
it. The run's counts are checked against the generator's truth file; the command exits 1 when
they differ. Results go to `bench_out/statements.json` and `.md`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import duckdb

import event_platform.store.writer as writer_module
from benchmarks.arguments import positive, share
from benchmarks.bench_data import DEFAULT_INVALID_RATE, bench_file, flushed_copy
from event_platform.ingest.ingestion import ingest_file
from event_platform.ingest.lines import DEFAULT_CHUNK_BYTES
from event_platform.store.connection import connect

ROOT = Path(__file__).resolve().parents[1]

# As landed files are named, so that a copied warehouse's zone maps can't skip by name alone.
SOURCE_FILE = "events-2026-11-24-timeline.jsonl"
TOP_STATEMENTS = 4


class TimedConnection:
    """A DuckDB connection that records how long each `execute` and `sql` call took, labelled
    by the statement's first words and by the chunk being written when it ran."""

    def __init__(self, con: object) -> None:
        self._con = con
        self.chunk = 0
        self.records: list[tuple[int, str, float]] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self._con, name)

    def execute(self, query: str, parameters: object = None) -> object:
        started = time.perf_counter()
        result = self._con.execute(query, parameters)
        self._record(query, started)
        return result

    def sql(self, query: str, *, params: object = None) -> object:
        started = time.perf_counter()
        result = self._con.sql(query, params=params)
        self._record(query, started)
        return result

    def _record(self, query: str, started: float) -> None:
        label = re.sub(r"\s+", " ", query).strip()[:60]
        self.records.append((self.chunk, label, time.perf_counter() - started))


def timeline(path: Path, database: Path, truth: dict, parts: int, chunk_bytes: int) -> dict:
    """Ingest `path` into `database`, timing every statement; the parts and the tail."""
    ticks = [(0, time.perf_counter(), time.process_time())]
    with connect(database) as con:
        # The writer's SQL names its Arrow chunks as locals of the writer's own frame; behind
        # this wrapper DuckDB must look further up the stack to find them.
        con.execute("SET python_scan_all_frames = true")
        timed = TimedConnection(con)

        def progress(lines: int, bytes_read: int) -> None:
            timed.chunk += 1
            ticks.append((lines, time.perf_counter(), time.process_time()))

        result = ingest_file(
            path,
            timed,
            run_id="timeline",
            source_file=SOURCE_FILE,
            chunk_bytes=chunk_bytes,
            progress=progress,
        )
    chunks = len(ticks) - 1
    rows = []
    for part in range(min(parts, chunks)):
        first, last = part * chunks // parts, (part + 1) * chunks // parts
        (lines_from, wall_from, cpu_from), (lines_to, wall_to, cpu_to) = ticks[first], ticks[last]
        statements: Counter[str] = Counter()
        for chunk, label, seconds in timed.records:
            # Statements recorded while chunk k (1-based) was written carry chunk index k - 1.
            if first <= chunk < last:
                statements[label] += seconds
        rows.append(
            {
                "part": part + 1,
                "lines": lines_to - lines_from,
                "lines_per_s": round((lines_to - lines_from) / (wall_to - wall_from)),
                "cpu_s": round(cpu_to - cpu_from, 2),
                "statements_s": round(sum(statements.values()), 2),
                # Every statement of the part, longest first; the table shows the first few.
                "statements": [(label, round(s, 3)) for label, s in statements.most_common()],
            }
        )
    tail = [(label, round(s, 3)) for chunk, label, s in timed.records if chunk >= chunks]
    correct = (
        result.stored == truth["valid"]
        and result.duplicates == truth["duplicates"]
        and result.reason_counts == truth["reason_counts"]
    )
    return {
        "lines": result.lines,
        "chunks": chunks,
        "seconds": round(result.seconds, 2),
        "stage_seconds": result.stage_seconds,
        "parts": rows,
        "after_last_chunk": tail,
        "correct": correct,
    }


def markdown(report: dict) -> str:
    out = [
        f"One ingestion of {report['lines']:,} lines ({report['chunks']} chunks) in "
        f"{report['seconds']} s, probe limit {report['probe_keys_limit']:,}"
        + (f", into a copy of {report['warehouse']}" if report["warehouse"] else "")
        + ".",
        "",
        "| part | lines | lines/s | CPU s | statements s | longest statements (s) |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["parts"]:
        top = "; ".join(f"`{label[:40]}` {s}" for label, s in row["statements"][:TOP_STATEMENTS])
        out.append(
            f"| {row['part']} | {row['lines']:,} | {row['lines_per_s']:,} | {row['cpu_s']} "
            f"| {row['statements_s']} | {top} |"
        )
    out += ["", "After the last chunk:", ""]
    out += [f"- {s} s `{label}`" for label, s in report["after_last_chunk"] if s >= 0.001]
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=positive, default=5_000_000)
    parser.add_argument("--invalid-rate", type=share, default=DEFAULT_INVALID_RATE)
    parser.add_argument("--parts", type=positive, default=10)
    parser.add_argument("--warehouse", type=Path, help="ingest into a copy of this warehouse")
    parser.add_argument("--probe-keys-limit", type=int, default=writer_module.PROBE_KEYS_LIMIT)
    parser.add_argument("--chunk-bytes", type=positive, default=DEFAULT_CHUNK_BYTES)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "bench_out" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "bench_out")
    args = parser.parse_args()
    if args.warehouse:
        if not args.warehouse.is_file():
            parser.error(f"--warehouse {args.warehouse}: no such file")
        # Refused before minutes of copying a large file, not by a traceback after it.
        try:
            duckdb.connect(str(args.warehouse), read_only=True).close()
        except duckdb.Error as exc:
            parser.error(f"--warehouse {args.warehouse}: {str(exc).splitlines()[0]}")
    args.data_dir.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path, truth = bench_file(args.lines, args.invalid_rate, args.data_dir)
    writer_module.PROBE_KEYS_LIMIT = args.probe_keys_limit
    with tempfile.TemporaryDirectory(dir=args.out) as scratch:
        database = Path(scratch) / "warehouse.duckdb"
        if args.warehouse:
            flushed_copy(args.warehouse, database)
        report = timeline(path, database, truth, args.parts, args.chunk_bytes)
    report["probe_keys_limit"] = args.probe_keys_limit
    report["warehouse"] = str(args.warehouse) if args.warehouse else None
    (args.out / "statements.json").write_text(json.dumps(report, indent=1))
    table = markdown(report)
    (args.out / "statements.md").write_text(table)
    print(table)
    if not report["correct"]:
        print("the run did not match the truth file", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
