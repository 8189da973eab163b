"""Argument types the benchmark scripts share, so a mistyped option is a usage error (exit 2)
with a one-line message, not a traceback after minutes of setup."""

from __future__ import annotations

import argparse


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
