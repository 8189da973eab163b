"""`event-platform generate`: write a realistic event file and its truth file.

The default output is the landing folder, where the sensor picks the file up; the data file is
renamed in complete, and there the truth file is a dot-file so the sensor never takes it for data.
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from event_platform.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate", help="write a realistic event file with a known truth (tests, benchmarks)"
    )
    parser.add_argument("--lines", type=int, required=True, help="number of lines")
    parser.add_argument("--invalid-rate", type=float, default=0.02, help="share of invalid lines")
    parser.add_argument("--duplicate-rate", type=float, default=0.0, help="share of duplicates")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same bytes")
    parser.add_argument("--start-date", default="2019-01-01", help="first day of event times")
    parser.add_argument("--days", type=int, default=30, help="event times span this many days")
    parser.add_argument(
        "--output",
        type=Path,
        help="default: $EVENT_PLATFORM_DATA_DIR/landing/generated-SEED-N.jsonl",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from event_platform.cli.main import UsageError
    from event_platform.generator import default_truth_path, generate_file

    if args.lines < 0:
        raise UsageError(f"--lines must be 0 or more, not {args.lines}")
    for name in ("invalid_rate", "duplicate_rate"):
        if not 0 <= getattr(args, name) <= 1:
            raise UsageError(f"--{name.replace('_', '-')} must be between 0 and 1")
    if args.invalid_rate + args.duplicate_rate > 1:
        raise UsageError("--invalid-rate plus --duplicate-rate must not exceed 1")
    if args.days < 1:
        raise UsageError(f"--days must be 1 or more, not {args.days}")
    try:
        start_date = date.fromisoformat(args.start_date)
    except ValueError:
        raise UsageError(f"--start-date must be YYYY-MM-DD, not {args.start_date!r}") from None

    landing_dir = settings.landing_dir
    output = args.output or landing_dir / f"generated-{args.seed}-{args.lines}.jsonl"
    truth_path = default_truth_path(output)
    if output.parent.resolve() == landing_dir.resolve():
        # The sensor ingests every non-dot file of the landing folder.
        truth_path = output.with_name(f".{output.name}.truth.json")

    started = time.perf_counter()
    result = generate_file(
        output,
        args.lines,
        args.invalid_rate,
        args.duplicate_rate,
        seed=args.seed,
        start_date=start_date,
        days=args.days,
        truth_path=truth_path,
    )
    seconds = time.perf_counter() - started
    megabytes = output.stat().st_size / 1e6
    print(
        f"wrote {result.path}: {result.lines:,} lines ({result.valid:,} valid, "
        f"{result.invalid:,} invalid, {result.duplicates:,} duplicates), {megabytes:,.1f} MB "
        f"in {seconds:.2f}s ({result.lines / max(seconds, 1e-9):,.0f} lines/s); "
        f"truth in {result.truth_path}"
    )
    return 0
