"""`event-platform generate`: write a realistic event file and its truth file."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate", help="write a realistic event file with a known truth (tests, benchmarks)"
    )
    parser.add_argument("--lines", type=int, required=True, help="number of lines")
    parser.add_argument("--invalid-rate", type=float, default=0.02, help="share of invalid lines")
    parser.add_argument("--duplicate-rate", type=float, default=0.0, help="share of duplicates")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same file")
    parser.add_argument(
        "--output",
        type=Path,
        help="default: $EVENT_PLATFORM_DATA_DIR/landing/generated-SEED-N.jsonl",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from event_platform.cli import UsageError
    from event_platform.config import Settings
    from event_platform.generator import generate_file

    if args.lines < 0:
        raise UsageError("--lines must be 0 or more")
    for name in ("invalid_rate", "duplicate_rate"):
        if not 0 <= getattr(args, name) <= 1:
            raise UsageError(f"--{name.replace('_', '-')} must be between 0 and 1")
    if args.invalid_rate + args.duplicate_rate > 1:
        raise UsageError("--invalid-rate plus --duplicate-rate must not exceed 1")
    output = args.output or (
        Settings.from_env().landing_dir / f"generated-{args.seed}-{args.lines}.jsonl"
    )
    started = time.perf_counter()
    result = generate_file(
        output, args.lines, args.invalid_rate, args.duplicate_rate, seed=args.seed
    )
    seconds = time.perf_counter() - started
    megabytes = output.stat().st_size / 1e6
    print(
        f"wrote {result.path}: {result.lines:,} lines ({result.valid:,} valid, "
        f"{result.invalid:,} invalid, {result.duplicates:,} duplicates), {megabytes:,.1f} MB "
        f"in {seconds:.2f}s; truth in {result.truth_path}"
    )
    return 0
