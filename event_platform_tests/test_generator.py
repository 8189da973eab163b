"""The generator's truth file is checked against an independent, plain-Python reading."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from event_platform.cli import main
from event_platform.generator import generate_file

KEYS = {"event_type", "event_time", "data", "processing_date"}


def independent_reason(line: str) -> str | None:
    """A small reference checker written separately from the validator (None = valid)."""
    if not line.strip():
        return "empty_line"
    try:
        record = json.loads(line, parse_constant=lambda name: 1 / 0)
    except (ValueError, ZeroDivisionError):
        return "malformed_json"
    if not isinstance(record, dict):
        return "not_an_object"
    if set(record) != KEYS:
        missing, extra = KEYS - set(record), set(record) - KEYS
        return f"missing_field:{min(missing)}" if missing else f"unexpected_field:{min(extra)}"
    if not isinstance(record["data"], dict):
        return "wrong_type:data"
    data = record["data"]
    if set(data) != {"user_email", "phone_number"}:
        return f"missing_field:data.{min({'user_email', 'phone_number'} - set(data))}"
    event_type = record["event_type"]
    if type(event_type) is not int:
        return "wrong_type:event_type"
    if not 1 <= event_type <= 10:
        return "out_of_range:event_type"
    try:
        if not re.fullmatch(
            r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}", record["event_time"]
        ):
            raise ValueError
        datetime.strptime(record["event_time"], "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return "invalid_format:event_time"
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", record["processing_date"]):
            raise ValueError
        datetime.strptime(record["processing_date"], "%Y-%m-%d")
    except ValueError:
        return "invalid_format:processing_date"
    if not re.fullmatch(r"[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}", data["user_email"]):
        return "invalid_format:data.user_email"
    if not isinstance(data["phone_number"], str):
        return "wrong_type:data.phone_number"
    if not re.fullmatch(r"[0-9]{6,15}", data["phone_number"]):
        return "invalid_format:data.phone_number"
    return None


def test_truth_matches_an_independent_reading(tmp_path: Path) -> None:
    result = generate_file(
        tmp_path / "g.jsonl", 3000, invalid_rate=0.1, duplicate_rate=0.05, seed=9
    )
    truth = json.loads(result.truth_path.read_text())
    lines = (tmp_path / "g.jsonl").read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and len(lines) - 1 == truth["lines"] == 3000
    seen: set[str] = set()
    found: dict[str, str] = {}
    duplicates = 0
    for number, line in enumerate(lines[:-1], start=1):
        reason = independent_reason(line)
        if reason is not None:
            found[str(number)] = reason
        elif line in seen:
            duplicates += 1
        else:
            seen.add(line)
    assert found == truth["invalid_lines"]
    assert duplicates == truth["duplicates"] == result.duplicates > 0
    assert len(seen) == truth["valid"]
    counted = {**{r: list(found.values()).count(r) for r in set(found.values())}}
    counted["duplicate_event"] = duplicates
    assert counted == truth["reason_counts"]


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    first = generate_file(tmp_path / "a.jsonl", 1000, seed=5).path.read_bytes()
    again = generate_file(tmp_path / "b.jsonl", 1000, seed=5).path.read_bytes()
    other = generate_file(tmp_path / "c.jsonl", 1000, seed=6).path.read_bytes()
    assert first == again != other


def test_cli_writes_into_landing_by_default(settings, capsys) -> None:
    assert main(["generate", "--lines", "50", "--seed", "2"]) == 0
    path = settings.landing_dir / "generated-2-50.jsonl"
    assert path.read_text().count("\n") == 50
    assert "50 lines" in capsys.readouterr().out
    assert not list(settings.landing_dir.glob(".*.tmp"))


@pytest.mark.parametrize(
    "arguments",
    [
        ["--lines", "-1"],
        ["--lines", "5", "--invalid-rate", "1.5"],
        ["--lines", "5", "--invalid-rate", "0.7", "--duplicate-rate", "0.7"],
    ],
)
def test_bad_arguments_exit_2(settings, capsys, arguments) -> None:
    assert main(["generate", *arguments]) == 2
    assert capsys.readouterr().err.startswith("event-platform generate: ")
