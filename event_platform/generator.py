"""Realistic event files with a known truth, for tests, demos and benchmarks.

Valid lines are built a chunk at a time from random 64-bit words (one `randbytes` call) and
polars string expressions, with no Python per line. The e-mail carries the line index, so every
valid event is unique and a random collision can never pass for a duplicate.
Invalid lines take one corruption each from a catalogue of single-reason breakages, and
duplicates copy an earlier valid line byte for byte; both are few, so they are built in Python.
The truth file next to the data says which lines carry which reason. All data is synthetic.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

import polars as pl
import pyarrow as pa

CHUNK_LINES = 500_000
MAX_LISTED_INVALID = 100_000
DUPLICATE_REASON = "duplicate_event"
FIRST_NAMES = (
    "anna", "bob", "chloe", "david", "emma", "farid", "gina", "hugo", "ines", "jules",
    "karim", "lea", "marc", "nora", "oscar", "paul", "quinn", "rosa", "sami", "tess",
)  # fmt: skip
DOMAINS = ("gmail.com", "yahoo.fr", "outlook.com", "example.org", "mail-box.net", "proton.me")
EVENT_TYPES = 10  # valid lines use event types 1..EVENT_TYPES, the contract's default set

Record = dict[str, Any]


# --- the catalogue of single-reason corruptions ------------------------------------------------


def _dump(record: object) -> str:
    return json.dumps(record, ensure_ascii=False)


def _with(record: Record, path: str, value: object) -> str:
    if path.startswith("data."):
        record["data"][path[5:]] = value
    else:
        record[path] = value
    return _dump(record)


def _without(record: Record, path: str) -> str:
    if path.startswith("data."):
        del record["data"][path[5:]]
    else:
        del record[path]
    return _dump(record)


def _truncated(text: str) -> str:
    return text[: len(text) // 2]


def _arabic_digits(text: str) -> str:
    return text.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))


# (reason, corruption of a valid record into a line): every corruption breaks exactly one rule
# and leaves the rest of the line valid, so the truth has one unambiguous reason per line.
CORRUPTIONS: tuple[tuple[str, Callable[[Record], str]], ...] = (
    ("empty_line", lambda r: ""),
    ("empty_line", lambda r: " \t "),
    ("malformed_json", lambda r: _truncated(_dump(r))),
    ("malformed_json", lambda r: _dump(r)[:-1] + ", }"),
    ("not_an_object", lambda r: "[" + _dump(r) + "]"),
    ("not_an_object", lambda r: str(r["event_type"])),
    ("missing_field:event_type", lambda r: _without(r, "event_type")),
    ("missing_field:event_time", lambda r: _without(r, "event_time")),
    ("missing_field:data", lambda r: _without(r, "data")),
    ("missing_field:processing_date", lambda r: _without(r, "processing_date")),
    ("missing_field:data.user_email", lambda r: _without(r, "data.user_email")),
    ("missing_field:data.phone_number", lambda r: _without(r, "data.phone_number")),
    ("unexpected_field:source", lambda r: _with(r, "source", "web")),
    ("unexpected_field:data.country", lambda r: _with(r, "data.country", "FR")),
    ("wrong_type:event_type", lambda r: _with(r, "event_type", str(r["event_type"]))),
    ("wrong_type:event_type", lambda r: _with(r, "event_type", float(r["event_type"]))),
    ("wrong_type:event_type", lambda r: _with(r, "event_type", True)),
    ("out_of_range:event_type", lambda r: _with(r, "event_type", 42)),
    ("out_of_range:event_type", lambda r: _with(r, "event_type", 0)),
    ("invalid_format:event_time", lambda r: _with(r, "event_time", "2019-02-30 10:00:00")),
    (
        "invalid_format:event_time",
        lambda r: _with(r, "event_time", r["event_time"][:10] + "T" + r["event_time"][11:]),
    ),
    (
        "invalid_format:event_time",
        lambda r: _with(r, "event_time", r["event_time"][:11] + "24:00:00"),
    ),
    (
        "invalid_format:event_time",
        lambda r: _with(r, "event_time", r["event_time"][:11] + "23:59:60"),
    ),
    (
        "invalid_format:processing_date",
        lambda r: _with(r, "processing_date", r["processing_date"].replace("-", "/")),
    ),
    ("wrong_type:data", lambda r: _with(r, "data", "user")),
    ("invalid_format:data.user_email", lambda r: _with(r, "data.user_email", "no-at-sign.com")),
    (
        "invalid_format:data.user_email",
        lambda r: _with(r, "data.user_email", r["data"]["user_email"].replace("@", "@@")),
    ),
    (
        "wrong_type:data.phone_number",
        lambda r: _with(r, "data.phone_number", int(r["data"]["phone_number"])),
    ),
    ("invalid_format:data.phone_number", lambda r: _with(r, "data.phone_number", "06-12")),
    (
        "invalid_format:data.phone_number",
        lambda r: _with(r, "data.phone_number", _arabic_digits(r["data"]["phone_number"])),
    ),
)


# --- valid lines, vectorised -------------------------------------------------------------------


@dataclass
class GenerationResult:
    """What was written; the same numbers as the truth file, for callers that skip reading it."""

    path: Path
    lines: int
    valid: int
    invalid: int
    duplicates: int
    reason_counts: dict[str, int]  # reason code -> number of lines that carry it
    truth_path: Path
    seed: int = 0
    invalid_lines: dict[int, str] | None = None  # line number -> reason (None above 100k)


def _random_words(rng: random.Random, count: int) -> pl.Series:
    """`count` random 64-bit words from `rng`: one C call, no Python per line, and the same
    bytes for a seed on every Python version (random.Random's stream is stable)."""
    buffer = pa.py_buffer(rng.randbytes(8 * count))
    return pl.from_arrow(pa.Array.from_buffers(pa.uint64(), count, [None, buffer]))


@cache
def _clock_table() -> pl.Series:
    """Every second of a day as HH:MM:SS, so a time is a gather, not a strftime per line."""
    return pl.Series(
        [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400)],
        dtype=pl.String,
    )


def _components(
    start: int, count: int, rng: random.Random, first_day: date, days: int
) -> pl.DataFrame:
    """The parts of the valid events for line indexes [start, start + count)."""
    bits = _random_words(rng, count)

    def field(shift: int, modulo: int) -> pl.Series:
        return (bits // 2**shift) % modulo

    dates = pl.Series([(first_day + timedelta(days=d)).isoformat() for d in range(days)])
    return pl.DataFrame(
        {
            "event_type": (field(0, EVENT_TYPES) + 1).cast(pl.Int64),
            "date": dates.gather(field(4, days)),
            "clock": _clock_table().gather(field(24, 86_400)),
            "name": pl.Series(FIRST_NAMES).gather(field(41, len(FIRST_NAMES))),
            "index": pl.int_range(start, start + count, dtype=pl.Int64, eager=True),
            "domain": pl.Series(DOMAINS).gather(field(46, len(DOMAINS))),
            # French-style mobile numbers: 06/07 and 8 digits, so most start with a 0.
            "mobile": field(50, 2) + 6,
            "subscriber": (bits % 100_000_007) % 100_000_000,
        }
    )


def _lines(parts: pl.DataFrame) -> pl.Series:
    """Each event as the JSON text Python's json.dumps would write, keys in contract order."""
    return parts.select(
        pl.concat_str(
            pl.lit('{"event_type": '),
            pl.col("event_type").cast(pl.String),
            pl.lit(', "event_time": "'),
            "date",
            pl.lit(" "),
            "clock",
            pl.lit('", "data": {"user_email": "'),
            "name",
            pl.lit("."),
            pl.col("index").cast(pl.String),
            pl.lit("@"),
            "domain",
            pl.lit('", "phone_number": "0'),
            pl.col("mobile").cast(pl.String),
            pl.col("subscriber").cast(pl.String).str.zfill(8),
            pl.lit('"}, "processing_date": "'),
            "date",
            pl.lit('"}'),
        ).alias("line")
    )["line"]


def _record(row: dict[str, Any]) -> Record:
    """The event of one row of `_components`, as the dict its line encodes."""
    return {
        "event_type": row["event_type"],
        "event_time": f"{row['date']} {row['clock']}",
        "data": {
            "user_email": f"{row['name']}.{row['index']}@{row['domain']}",
            "phone_number": f"0{row['mobile']}{row['subscriber']:08d}",
        },
        "processing_date": row["date"],
    }


# --- the file ----------------------------------------------------------------------------------


def _check_arguments(lines: int, invalid_rate: float, duplicate_rate: float, days: int) -> None:
    if lines < 0:
        raise ValueError(f"lines must be 0 or more, not {lines}")
    if not 0 <= invalid_rate <= 1 or not 0 <= duplicate_rate <= 1:
        raise ValueError("invalid_rate and duplicate_rate must be between 0 and 1")
    if invalid_rate + duplicate_rate > 1:
        raise ValueError("invalid_rate + duplicate_rate must not exceed 1")
    if days < 1:
        raise ValueError(f"days must be 1 or more, not {days}")


def default_truth_path(path: Path) -> Path:
    """`<file>.truth.json` beside the data file (benchmarks and tests look for it there)."""
    return path.with_name(path.name + ".truth.json")


def generate_file(
    path: Path,
    lines: int,
    invalid_rate: float = 0.02,
    duplicate_rate: float = 0.0,
    seed: int = 0,
    start_date: date = date(2019, 1, 1),
    days: int = 30,
    truth_path: Path | None = None,
) -> GenerationResult:
    """Write `lines` event lines to `path` atomically, and the truth beside it.

    `invalid_rate` and `duplicate_rate` are shares of the lines (rounded per chunk of
    CHUNK_LINES); a duplicate copies an earlier valid line of the same chunk, so the first line
    of a chunk is never one. Event times fall in `days` days from `start_date`. The data file
    appears complete or not at all (written under a dot-name, then renamed), because a sensor
    may be watching the folder; the truth file (default `<path>.truth.json`, pass a dot-name
    when writing into a watched folder) is renamed in afterwards the same way.
    """
    _check_arguments(lines, invalid_rate, duplicate_rate, days)
    path.parent.mkdir(parents=True, exist_ok=True)
    truth_path = truth_path or default_truth_path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    reasons: Counter[str] = Counter()
    invalid_lines: dict[int, str] = {}
    try:
        # One writer thread: chunk k is written (polars releases the GIL) while k + 1 is built;
        # at most two chunks are alive, so memory stays flat whatever the number of lines.
        with temporary.open("wb") as output, ThreadPoolExecutor(1) as writer:
            pending: Future[None] | None = None
            for start in range(0, lines, CHUNK_LINES):
                count = min(CHUNK_LINES, lines - start)
                chunk = _chunk(start, count, seed, start_date, days, invalid_rate, duplicate_rate)
                text, chunk_reasons = chunk
                for number, reason in chunk_reasons.items():
                    reasons[reason] += 1
                    if reason != DUPLICATE_REASON:
                        invalid_lines[number] = reason
                if pending is not None:
                    pending.result()
                pending = writer.submit(_write_lines, text, output)
            if pending is not None:
                pending.result()
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    duplicates = reasons[DUPLICATE_REASON]
    listed = len(invalid_lines) <= MAX_LISTED_INVALID
    result = GenerationResult(
        path=path,
        lines=lines,
        valid=lines - len(invalid_lines) - duplicates,
        invalid=len(invalid_lines),
        duplicates=duplicates,
        reason_counts=dict(sorted((r, n) for r, n in reasons.items() if n)),
        truth_path=truth_path,
        seed=seed,
        invalid_lines=invalid_lines if listed else None,
    )
    _write_truth(result)
    return result


def _chunk(
    start: int,
    count: int,
    seed: int,
    first_day: date,
    days: int,
    invalid_rate: float,
    duplicate_rate: float,
) -> tuple[pl.Series, dict[int, str]]:
    """One chunk's lines and {line number: reason} for its invalid and duplicate lines."""
    rng = random.Random(f"{seed}:{start}")  # noqa: S311 - synthetic test data, not secrets
    components = _components(start, count, rng, first_day, days)
    text = _lines(components)
    n_invalid = round(count * invalid_rate)
    n_copies = min(round(count * duplicate_rate), count - n_invalid)
    positions = rng.sample(range(count), n_invalid + n_copies)
    invalid = sorted(positions[:n_invalid])
    copies = sorted(positions[n_invalid:])
    changed: dict[int, str] = {}
    reasons: dict[int, str] = {}
    rows = components[invalid].to_dicts() if invalid else []
    for position, row in zip(invalid, rows, strict=True):
        reason, corrupt = CORRUPTIONS[(start + position) % len(CORRUPTIONS)]
        changed[position] = corrupt(_record(row))
        reasons[start + position + 1] = reason
    taken = set(positions)
    for position in copies:
        # The source is an untouched (valid, original) line before the copy.
        tries = (rng.randrange(position) for _ in range(8)) if position else ()
        sources = [p for p in tries if p not in taken]
        if sources:
            changed[position] = text[sources[0]]
            reasons[start + position + 1] = DUPLICATE_REASON
    if changed:
        keys = sorted(changed)
        text = text.scatter(keys, [changed[k] for k in keys])
    return text, reasons


def _write_lines(text: pl.Series, output: BinaryIO) -> None:
    """Each line then a newline, written by polars straight from its buffers (no quoting)."""
    pl.DataFrame({"line": text}).write_csv(output, include_header=False, quote_style="never")


def _write_truth(result: GenerationResult) -> None:
    truth: dict[str, Any] = {
        "file": result.path.name,
        "lines": result.lines,
        "valid": result.valid,
        "invalid": result.invalid,
        "duplicates": result.duplicates,
        "reason_counts": result.reason_counts,
        "seed": result.seed,
    }
    if result.invalid_lines is None:
        truth["note"] = f"invalid_lines omitted: more than {MAX_LISTED_INVALID} invalid lines"
    else:
        truth["invalid_lines"] = {str(k): v for k, v in sorted(result.invalid_lines.items())}
    temporary = result.truth_path.with_name(f".{result.truth_path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(truth, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(temporary, result.truth_path)
