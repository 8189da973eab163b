"""Where the lineage's time goes: each stage alone, on one thread, in wall and CPU seconds.

    .venv/bin/python -m benchmarks.stage_profile [--lines 1000000] [--repeat 3]

The whole lineage is CPU-bound on two cores, so CPU seconds are the figure that matters: a stage
that DuckDB or polars spreads over both cores can look fast by the wall clock and still cost the
pipeline as much. Each stage runs over the whole file, chunk by chunk, as the lineage does; the
best of `--repeat` runs is kept (noise only ever adds time). Results go to
`bench_out/stages.json` and `.md`. It calls the stages' own classes (the parser, the validator,
`PartitionWriter`) because a stage alone has no public entry point; the whole runs through
`ingest_file` and `reconcile_partition`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
from pandera.errors import SchemaErrors

from benchmarks.bench_data import (
    DEFAULT_INVALID_RATE,
    bench_file,
)
from event_platform.contract import EVENTS_CONTRACT
from event_platform.ingest import fast_shape
from event_platform.ingest.hashing import line_digest, settle_first_in_chunk, with_event_hash
from event_platform.ingest.ingestion import ingest_file
from event_platform.ingest.lines import LineChunk, read_line_chunks
from event_platform.ingest.parsing import StructuralParser
from event_platform.ingest.validation import Validator
from event_platform.reconcile import reconcile_partition
from event_platform.store.connection import connect
from event_platform.store.writer import PartitionWriter

ROOT = Path(__file__).resolve().parents[1]

ALLOWED = frozenset(range(1, 11))
# Fixed, so the sample (and its cost) is the same in every run of the profile.
SAMPLE_SEED = 26


def best_of(repeat: int, work: Callable[[], object]) -> tuple[float, float]:
    """(wall, cpu) seconds of the fastest of `repeat` runs."""
    runs = []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    return min(runs)


def each(items: Iterable, step: Callable) -> Callable[[], None]:
    def work() -> None:
        for item in items:
            step(item)

    return work


def value_checks(schema, columns: list[str]) -> Callable[[pl.DataFrame], None]:
    def check(parsed: pl.DataFrame) -> None:
        # The failure cases are the result; building reason lists from them is in `validate`.
        with contextlib.suppress(SchemaErrors):
            schema.validate(parsed.select(columns), lazy=True)

    return check


def no_other_files(late: Iterator[pl.Series]) -> Iterator[pl.DataFrame]:
    raise AssertionError("lines duplicate another file in an empty warehouse")


def write_all(hashed: list, rejected: list, workdir: Path) -> Callable[[], None]:
    def work() -> None:
        now = datetime.now(UTC)
        with (
            tempfile.TemporaryDirectory(dir=workdir) as scratch,
            connect(Path(scratch) / "warehouse.duckdb") as con,
            # One file into an empty warehouse: no line duplicates another file's.
            PartitionWriter(
                con, EVENTS_CONTRACT, "f.jsonl", "profile", now, reread=no_other_files
            ) as writer,
        ):
            for valid, bad in zip(hashed, rejected, strict=True):
                writer.write(valid, bad)
            lines = sum(map(len, hashed)) + sum(map(len, rejected))
            writer.file_read("0" * 64, lines)

    return work


def hashed_valid(valid: pl.DataFrame) -> pl.DataFrame:
    """A validated chunk's valid rows as the workers hand them to the writer."""
    return settle_first_in_chunk(with_event_hash(valid).with_columns(line_digest()))


def _utf8(chunk: LineChunk) -> pa.LargeStringArray | None:
    """The chunk as text, as the parser casts it; None when a line is not UTF-8."""
    try:
        return chunk.raw.cast(pa.large_string())
    except pa.ArrowInvalid:
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "bench_out" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "bench_out")
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    path, _ = bench_file(args.lines, DEFAULT_INVALID_RATE, args.data_dir)

    chunks = list(read_line_chunks(path))
    validator = Validator(EVENTS_CONTRACT, ALLOWED)
    structural = StructuralParser(EVENTS_CONTRACT)
    parse_con = duckdb.connect(":memory:")
    structural.prepare(parse_con)
    parsed = [structural.parse(parse_con, chunk) for chunk in chunks]
    validated = [validator.validate(chunk) for chunk in chunks]
    hashed = [hashed_valid(v.valid) for v in validated]
    rejected = [v.rejected.with_columns(line_digest("raw_line")) for v in validated]
    columns = [f.name for f in EVENTS_CONTRACT.scalar_fields]

    stages: dict[str, tuple[float, float]] = {}

    def measure(name: str, work: Callable[[], object]) -> None:
        print(f"{name} ...", file=sys.stderr, flush=True)
        stages[name] = best_of(args.repeat, work)

    measure("read and split lines (+ file sha256)", lambda: list(read_line_chunks(path)))
    measure(
        "parse (fast path: compiled, or its regex; JSON SQL for the rest)",
        each(chunks, lambda c: structural.parse(parse_con, c)),
    )
    regex = StructuralParser(EVENTS_CONTRACT, native=False)
    measure(
        "parse with the regex fast path (EVENT_PLATFORM_PARSER=regex)",
        each(chunks, lambda c: regex.parse(parse_con, c)),
    )
    # The fast path's own work, without the JSON path and the frame around it.
    texts = [text for text in (_utf8(chunk) for chunk in chunks) if text is not None]
    measure(
        "fast path alone: the regex's capture groups",
        each(texts, lambda t: pl.from_arrow(t).str.extract_groups(structural.fast_pattern)),
    )
    if fast_shape.available():
        measure(
            "fast path alone: compiled (ingest/_shape.c)",
            each(texts, fast_shape.ShapeLocator(EVENTS_CONTRACT).locate),
        )
    measure("value checks (pandera)", each(parsed, value_checks(validator.schema, columns)))
    measure(
        "validate = parse + value checks + canonical text + reason lists",
        each(chunks, validator.validate),
    )
    measure(
        "event hash (polars-hash sha256) + keys + line digests",
        each(
            validated,
            lambda v: (hashed_valid(v.valid), v.rejected.with_columns(line_digest("raw_line"))),
        ),
    )
    measure(
        "write one partition (INSERTs + COMMIT)",
        write_all(hashed, rejected, args.data_dir),
    )

    with (
        tempfile.TemporaryDirectory(dir=args.data_dir) as scratch,
        connect(Path(scratch) / "warehouse.duckdb") as con,
    ):
        ingest_file(path, con, run_id="profile", workers=1)
        measure(
            "reconcile in full mode, one worker (re-read, re-validate, re-hash, classify)",
            lambda: reconcile_partition(path, con, run_id="profile", workers=1, mode="full"),
        )
        measure(
            "reconcile in ledger mode (re-read, digest, match, rehash stored, 10k sample)",
            lambda: reconcile_partition(
                path, con, run_id="profile", mode="ledger", sample_seed=SAMPLE_SEED
            ),
        )
    validator.close()
    parse_con.close()

    scale = 1_000_000 / args.lines
    report = {
        "lines": args.lines,
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "per_million_lines": {
            name: {"wall_s": round(wall * scale, 3), "cpu_s": round(cpu * scale, 3)}
            for name, (wall, cpu) in stages.items()
        },
    }
    lines = [
        f"Stage profile, {args.lines:,} lines, best of {args.repeat}, {report['when']}",
        "",
        "| stage | wall s / 1M lines | CPU s / 1M lines |",
        "|---|---|---|",
        *(
            f"| {name} | {row['wall_s']:.2f} | {row['cpu_s']:.2f} |"
            for name, row in report["per_million_lines"].items()
        ),
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stages.json").write_text(json.dumps(report, indent=1))
    (args.out / "stages.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
