"""Realistic event files with a known truth, for tests, demos and benchmarks.

Valid lines are built with polars expressions a chunk at a time (no Python per line), each
from its line index, so every valid event is unique and a run is reproducible from its seed.
Invalid lines take one corruption each from a catalogue of single-reason breakages, and
duplicates copy an earlier valid line byte for byte; both are few, so they are built in Python.
The truth file next to the data says how many lines carry each reason.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path

import polars as pl

CHUNK_LINES = 500_000
MAX_LISTED_INVALID = 100_000
FIRST_NAMES = [
    "anna",
    "bob",
    "chloe",
    "david",
    "emma",
    "farid",
    "gina",
    "hugo",
    "ines",
    "jules",
    "karim",
    "lea",
    "marc",
    "nora",
    "oscar",
    "paul",
    "quinn",
    "rosa",
    "sami",
    "tess",
]
DOMAINS = ["gmail.com", "yahoo.fr", "outlook.com", "example.org", "mail-box.net", "proton.me"]


def _record(line: str) -> dict:
    return json.loads(line)


def _dump(record: object) -> str:
    return json.dumps(record, ensure_ascii=False)


def _with(line: str, **changes: object) -> str:
    record = _record(line)
    for key, value in changes.items():
        if key.startswith("data."):
            record["data"][key[5:]] = value
        else:
            record[key] = value
    return _dump(record)


def _without(line: str, path: str) -> str:
    record = _record(line)
    if path.startswith("data."):
        del record["data"][path[5:]]
    else:
        del record[path]
    return _dump(record)


def _arabic_digits(text: str) -> str:
    return text.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))


# (reason, corruption of a valid line): every corruption breaks exactly one rule.
CORRUPTIONS: list[tuple[str, Callable[[str], str]]] = [
    ("empty_line", lambda line: ""),
    ("empty_line", lambda line: " \t "),
    ("malformed_json", lambda line: line[: len(line) // 2]),
    ("malformed_json", lambda line: line[:-1] + ", }"),
    ("not_an_object", lambda line: "[" + line + "]"),
    ("missing_field:data.phone_number", lambda line: _without(line, "data.phone_number")),
    ("missing_field:event_type", lambda line: _without(line, "event_type")),
    ("unexpected_field:source", lambda line: _with(line, source="web")),
    (
        "wrong_type:event_type",
        lambda line: _with(line, event_type=str(_record(line)["event_type"])),
    ),
    (
        "wrong_type:event_type",
        lambda line: _with(line, event_type=float(_record(line)["event_type"])),
    ),
    ("wrong_type:event_type", lambda line: _with(line, event_type=True)),
    ("out_of_range:event_type", lambda line: _with(line, event_type=42)),
    ("invalid_format:event_time", lambda line: _with(line, event_time="2019-02-30 10:00:00")),
    (
        "invalid_format:event_time",
        lambda line: _with(line, event_time=_record(line)["event_time"].replace(" ", "T")),
    ),
    (
        "invalid_format:event_time",
        lambda line: _with(line, event_time=_record(line)["event_time"][:11] + "23:59:60"),
    ),
    (
        "invalid_format:processing_date",
        lambda line: _with(
            line, processing_date=_record(line)["processing_date"].replace("-", "/")
        ),
    ),
    ("wrong_type:data", lambda line: _with(line, data="user")),
    (
        "invalid_format:data.user_email",
        lambda line: _with(
            line, **{"data.user_email": _record(line)["data"]["user_email"].replace("@", "-at-")}
        ),
    ),
    (
        "wrong_type:data.phone_number",
        lambda line: _with(
            line, **{"data.phone_number": int(_record(line)["data"]["phone_number"])}
        ),
    ),
    (
        "invalid_format:data.phone_number",
        lambda line: _with(line, **{"data.phone_number": "06-12"}),
    ),
    (
        "invalid_format:data.phone_number",
        lambda line: _with(
            line, **{"data.phone_number": _arabic_digits(_record(line)["data"]["phone_number"])}
        ),
    ),
]


@dataclass
class GenerationResult:
    path: Path
    lines: int
    valid: int
    invalid: int
    duplicates: int
    reason_counts: dict[str, int]
    truth_path: Path
    seed: int
    invalid_lines: dict[int, str] = field(default_factory=dict, repr=False)


def _valid_lines(start: int, count: int, seed: int, first_day: date, days: int) -> pl.Series:
    """Valid events for line indexes [start, start + count), as JSON text."""
    index = pl.int_range(start, start + count, dtype=pl.Int64, eager=True).alias("i")
    # A cheap reproducible mix of the index and the seed (plain integer arithmetic, so the
    # output does not depend on the polars version's hash functions).
    mixed = (pl.col("i") * 2_654_435_761 + seed * 97_531) % 4_294_967_291
    origin = datetime(first_day.year, first_day.month, first_day.day)
    moment = pl.lit(origin) + pl.duration(seconds=mixed % (days * 86_400))
    pad = lambda expr, width: expr.cast(pl.String).str.zfill(width)  # noqa: E731
    frame = pl.DataFrame(index).select(
        pl.concat_str(
            [
                pl.lit('{"event_type": '),
                (mixed % 10 + 1).cast(pl.String),
                pl.lit(', "event_time": "'),
                moment.dt.strftime("%Y-%m-%d %H:%M:%S"),
                pl.lit('", "data": {"user_email": "'),
                pl.lit(pl.Series(FIRST_NAMES)).get(mixed % len(FIRST_NAMES)),
                pl.lit("."),
                pl.col("i").cast(pl.String),
                pl.lit("@"),
                pl.lit(pl.Series(DOMAINS)).get((mixed // 7) % len(DOMAINS)),
                pl.lit('", "phone_number": "0'),
                (mixed % 2 + 6).cast(pl.String),
                pad(pl.col("i") % 100_000_000, 8),
                pl.lit('"}, "processing_date": "'),
                moment.dt.strftime("%Y-%m-%d"),
                pl.lit('"}'),
            ]
        ).alias("line")
    )
    return frame["line"]


def generate_file(
    path: Path,
    lines: int,
    invalid_rate: float = 0.02,
    duplicate_rate: float = 0.0,
    seed: int = 0,
    start_date: date = date(2019, 1, 1),
    days: int = 30,
) -> GenerationResult:
    """Write `lines` lines to `path` (atomically) and the truth to `<path>.truth.json`."""
    if lines < 0:
        raise ValueError("lines must be >= 0")
    if not 0 <= invalid_rate <= 1 or not 0 <= duplicate_rate <= 1:
        raise ValueError("rates must be between 0 and 1")
    if invalid_rate + duplicate_rate > 1:
        raise ValueError("invalid_rate + duplicate_rate must not exceed 1")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    reasons: Counter[str] = Counter()
    invalid_lines: dict[int, str] = {}
    duplicates = 0
    with temporary.open("wb") as output:
        for start in range(0, lines, CHUNK_LINES):
            count = min(CHUNK_LINES, lines - start)
            rng = random.Random(f"{seed}:{start}")  # noqa: S311 - test data, not secrets
            text = _valid_lines(start, count, seed, start_date, days)
            positions = rng.sample(range(count), round(count * (invalid_rate + duplicate_rate)))
            n_invalid = round(count * invalid_rate)
            invalid, copies = sorted(positions[:n_invalid]), sorted(positions[n_invalid:])
            changed: dict[int, str] = {}
            for position in invalid:
                reason, corrupt = CORRUPTIONS[(start + position) % len(CORRUPTIONS)]
                changed[position] = corrupt(text[position])
                reasons[reason] += 1
                invalid_lines[start + position + 1] = reason
            taken = set(positions)
            for position in copies:
                if position == 0:
                    continue  # nothing earlier to copy
                sources = [p for p in (rng.randrange(position) for _ in range(8)) if p not in taken]
                if sources:
                    changed[position] = text[sources[0]]
                    duplicates += 1
                    reasons["duplicate_event"] += 1
            if changed:
                keys = sorted(changed)
                text = text.scatter(keys, [changed[k] for k in keys])
            output.write(text.str.join("\n").item().encode())
            output.write(b"\n")
    os.replace(temporary, path)
    invalid_count = sum(count for reason, count in reasons.items() if reason != "duplicate_event")
    result = GenerationResult(
        path=path,
        lines=lines,
        valid=lines - invalid_count - duplicates,
        invalid=invalid_count,
        duplicates=duplicates,
        reason_counts=dict(sorted(reasons.items())),
        truth_path=path.with_name(path.name + ".truth.json"),
        seed=seed,
        invalid_lines=invalid_lines,
    )
    truth = {k: v for k, v in asdict(result).items() if k not in ("path", "truth_path")}
    truth["file"] = path.name
    if len(invalid_lines) > MAX_LISTED_INVALID:
        truth["invalid_lines"] = None
        truth["note"] = f"invalid_lines omitted above {MAX_LISTED_INVALID} lines"
    else:
        truth["invalid_lines"] = {str(k): v for k, v in sorted(invalid_lines.items())}
    truth_temporary = result.truth_path.with_name(f".{result.truth_path.name}.tmp")
    truth_temporary.write_text(json.dumps(truth, indent=1))
    os.replace(truth_temporary, result.truth_path)
    return result
