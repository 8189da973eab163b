"""Argument types the benchmark scripts share, so a mistyped option is a usage error (exit 2)
with a one-line message, not a traceback after minutes of setup."""

from __future__ import annotations

import argparse
from pathlib import Path


def counts(text: str) -> list[int]:
    """`0,20000000,100000000` as integers; an empty text is an empty list."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of whole numbers"
        ) from None
    if any(value < 0 for value in values):
        raise argparse.ArgumentTypeError(f"{text!r} holds a negative number")
    return values


def positive(text: str) -> int:
    """A whole number of at least 1: sizes and repeat counts that zero would break."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def share(text: str) -> float:
    """A share of lines from 0 to 1, as the generator takes it (`--invalid-rate 0.02`)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 1")
    return value


def add_child_run_options(parser: argparse.ArgumentParser, root: Path) -> None:
    """Options of a benchmark that runs each measured run as a fresh process of itself: where
    the generated files are cached and the results go, and the hidden pair a child is started
    with (`--run-one --file PATH`, see child.py)."""
    parser.add_argument("--data-dir", type=Path, default=root / "bench_out" / "data")
    parser.add_argument("--out", type=Path, default=root / "bench_out")
    parser.add_argument("--run-one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
