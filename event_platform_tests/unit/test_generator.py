"""The generator's truth file is checked against an independent, plain-Python reading.

The checker here is written from the contract's rules, not from the validator or the generator,
and lists *every* rule a line breaks, so "one reason per invalid line" is checked, not assumed.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import pytest

from event_platform import generator
from event_platform.cli import main
from event_platform.generator import CORRUPTIONS, generate_file
from event_platform.ingest.landing import landed_files

KEYS = ["event_type", "event_time", "data", "processing_date"]
DATA_KEYS = ["user_email", "phone_number"]
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}")


def _reject_constant(name: str) -> None:
    raise ValueError(f"not JSON: {name}")


def _is_datetime(text: str, shape: str, fmt: str) -> bool:
    if not re.fullmatch(shape, text):
        return False
    try:
        datetime.strptime(text, fmt)
    except ValueError:
        return False
    return True


def broken_rules(line: str) -> list[str]:
    """Every contract rule `line` breaks ([] = valid), in no particular priority."""
    if not line.strip():
        return ["empty_line"]
    try:
        record = json.loads(line, parse_constant=_reject_constant)
    except ValueError:
        return ["malformed_json"]
    if not isinstance(record, dict):
        return ["not_an_object"]
    rules = [f"missing_field:{key}" for key in KEYS if key not in record]
    rules += [f"unexpected_field:{key}" for key in record if key not in KEYS]
    event_type = record.get("event_type", 1)
    if type(event_type) is not int:
        rules.append("wrong_type:event_type")
    elif not 1 <= event_type <= 10:
        rules.append("out_of_range:event_type")
    for key, shape, fmt in [
        (
            "event_time",
            r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}",
            "%Y-%m-%d %H:%M:%S",
        ),
        ("processing_date", r"[0-9]{4}-[0-9]{2}-[0-9]{2}", "%Y-%m-%d"),
    ]:
        value = record.get(key, "2019-01-01 00:00:00"[: len(fmt) + 2])
        if not isinstance(value, str):
            rules.append(f"wrong_type:{key}")
        elif not _is_datetime(value, shape, fmt):
            rules.append(f"invalid_format:{key}")
    data = record.get("data", {"user_email": "a@b.cd", "phone_number": "0600000000"})
    if not isinstance(data, dict):
        return [*rules, "wrong_type:data"]
    rules += [f"missing_field:data.{key}" for key in DATA_KEYS if key not in data]
    rules += [f"unexpected_field:data.{key}" for key in data if key not in DATA_KEYS]
    email = data.get("user_email", "a@b.cd")
    if not isinstance(email, str):
        rules.append("wrong_type:data.user_email")
    elif not (email.isascii() and EMAIL.fullmatch(email)):
        rules.append("invalid_format:data.user_email")
    phone = data.get("phone_number", "0600000000")
    if not isinstance(phone, str):
        rules.append("wrong_type:data.phone_number")
    elif not re.fullmatch(r"[0-9]{6,15}", phone, flags=re.ASCII):
        rules.append("invalid_format:data.phone_number")
    return rules


def test_the_checker_catches_each_rule() -> None:
    """Guard the guard: the reference checker must itself see the breakages it is used for."""
    good = {
        "event_type": 7,
        "event_time": "2019-01-04 05:07:26",
        "data": {"user_email": "TAFgZ@gmail.com", "phone_number": "0603728764"},
        "processing_date": "2019-01-04",
    }
    assert broken_rules(json.dumps(good)) == []
    assert broken_rules("") == broken_rules("  ") == ["empty_line"]
    assert broken_rules('{"event_type": 7,') == ["malformed_json"]
    assert broken_rules(json.dumps({**good, "event_type": 7.0})) == ["wrong_type:event_type"]
    assert broken_rules(json.dumps({**good, "event_time": "2019-01-04 24:00:00"})) == [
        "invalid_format:event_time"
    ]
    phone = {**good, "data": {**good["data"], "phone_number": "٠٦٠٣٧٢٨٧٦٤"}}
    assert broken_rules(json.dumps(phone)) == ["invalid_format:data.phone_number"]


@pytest.mark.parametrize(("reason", "corrupt"), CORRUPTIONS)
def test_each_corruption_breaks_exactly_its_rule(reason, corrupt) -> None:
    record = {
        "event_type": 3,
        "event_time": "2019-01-31 23:59:59",
        "data": {"user_email": "anna.12@mail-box.net", "phone_number": "0612345678"},
        "processing_date": "2019-01-31",
    }
    assert broken_rules(json.dumps(record)) == []
    assert broken_rules(corrupt(record)) == [reason]


def _read(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return text.split("\n")[:-1]


def check_against_truth(path: Path, truth: dict, start: date, days: int) -> None:
    """Recount the file line by line and compare every number with the truth."""
    lines = _read(path)
    assert len(lines) == truth["lines"]
    valid: set[str] = set()
    emails: set[str] = set()
    found: dict[str, str] = {}
    duplicates = 0
    for number, line in enumerate(lines, start=1):
        rules = broken_rules(line)
        assert len(rules) <= 1, (number, line, rules)  # one reason per line: no ambiguity
        if rules:
            found[str(number)] = rules[0]
            continue
        if line in valid:
            duplicates += 1  # a byte-identical copy of an earlier valid line
            continue
        record = json.loads(line)
        assert line == json.dumps(record)  # key order and spacing as documented
        assert record["processing_date"] == record["event_time"][:10]
        assert 0 <= (date.fromisoformat(record["processing_date"]) - start).days < days
        assert record["data"]["user_email"] not in emails  # valid events are all distinct
        emails.add(record["data"]["user_email"])
        valid.add(line)
    assert found == truth["invalid_lines"]
    assert truth["invalid"] == len(found)
    assert truth["duplicates"] == duplicates
    assert truth["valid"] == len(valid) == truth["lines"] - truth["invalid"] - duplicates
    counted = Counter(found.values())
    if duplicates:
        counted["duplicate_event"] = duplicates
    assert truth["reason_counts"] == dict(counted)


def test_truth_matches_an_independent_reading(tmp_path: Path) -> None:
    result = generate_file(
        tmp_path / "g.jsonl", 6000, invalid_rate=0.1, duplicate_rate=0.05, seed=9
    )
    truth = json.loads(result.truth_path.read_text())
    assert result.truth_path == tmp_path / "g.jsonl.truth.json"
    check_against_truth(result.path, truth, date(2019, 1, 1), 30)
    assert (truth["lines"], truth["invalid"], truth["seed"]) == (6000, 600, 9)
    assert 250 <= truth["duplicates"] <= 300  # a copy needs an untouched earlier line
    # With 600 invalid lines every corruption of the catalogue shows up.
    assert set(truth["reason_counts"]) == {reason for reason, _ in CORRUPTIONS} | {
        "duplicate_event"
    }
    assert (result.valid, result.invalid, result.duplicates) == (
        truth["valid"],
        truth["invalid"],
        truth["duplicates"],
    )
    assert result.reason_counts == truth["reason_counts"]


def test_chunk_boundaries_keep_line_numbers_and_uniqueness(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(generator, "CHUNK_LINES", 700)
    path = tmp_path / "chunks.jsonl"
    result = generate_file(
        path, 3000, invalid_rate=0.05, duplicate_rate=0.03, seed=4, start_date=date(2024, 2, 27)
    )
    truth = json.loads(result.truth_path.read_text())
    check_against_truth(path, truth, date(2024, 2, 27), 30)
    assert truth["invalid"] == 4 * 35 + 10  # 5% of each chunk: four of 700 lines, one of 200
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    def make(name: str, seed: int) -> tuple[bytes, dict]:
        result = generate_file(tmp_path / name, 2000, duplicate_rate=0.01, seed=seed)
        truth = json.loads(result.truth_path.read_text())
        truth.pop("file")
        return result.path.read_bytes(), truth

    first, again, other = make("a.jsonl", 5), make("b.jsonl", 5), make("c.jsonl", 6)
    assert first == again
    assert first[0] != other[0] and first[1]["invalid_lines"] != other[1]["invalid_lines"]


def test_many_invalid_lines_are_counted_not_listed(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(generator, "MAX_LISTED_INVALID", 10)
    result = generate_file(tmp_path / "many.jsonl", 1000, invalid_rate=0.5, seed=1)
    truth = json.loads(result.truth_path.read_text())
    assert "invalid_lines" not in truth and "omitted" in truth["note"]
    assert result.invalid_lines is None
    assert truth["invalid"] == sum(truth["reason_counts"].values()) == 500
    rules = Counter(rule for line in _read(result.path) for rule in broken_rules(line))
    assert dict(rules) == truth["reason_counts"]


def test_no_invalid_lines_and_empty_file(tmp_path: Path) -> None:
    clean = generate_file(tmp_path / "clean.jsonl", 100, invalid_rate=0.0)
    assert (clean.valid, clean.invalid, clean.reason_counts) == (100, 0, {})
    assert all(broken_rules(line) == [] for line in _read(clean.path))
    empty = generate_file(tmp_path / "empty.jsonl", 0)
    assert empty.path.read_bytes() == b"" and empty.valid == 0


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch) -> None:
    """Readers see the whole file or nothing: a crash mid-way leaves neither file nor temp."""
    monkeypatch.setattr(generator, "CHUNK_LINES", 100)
    calls = []

    def failing_write(text, output) -> None:
        calls.append(len(text))
        if len(calls) == 2:
            raise OSError("disk full")
        output.write(b"partial\n")

    monkeypatch.setattr(generator, "_write_lines", failing_write)
    with pytest.raises(OSError, match="disk full"):
        generate_file(tmp_path / "crash.jsonl", 1000)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "kwargs",
    [{"lines": -1}, {"invalid_rate": 1.5}, {"invalid_rate": 0.6, "duplicate_rate": 0.6}],
)
def test_bad_arguments_raise(tmp_path: Path, kwargs) -> None:
    with pytest.raises(ValueError):
        generate_file(tmp_path / "x.jsonl", **{"lines": 10, **kwargs})
    assert not (tmp_path / "x.jsonl").exists()


def test_cli_writes_into_landing_by_default(settings, capsys) -> None:
    assert main(["generate", "--lines", "50", "--seed", "2", "--invalid-rate", "0.1"]) == 0
    path = settings.landing_dir / "generated-2-50.jsonl"
    assert len(_read(path)) == 50
    out = capsys.readouterr().out
    assert str(path) in out and "50 lines" in out and "5 invalid" in out
    # The sensor must see the data file only: the truth file is a dot-file, no temp is left.
    assert [f.name for f in landed_files(settings.landing_dir)] == [path.name]
    truth = json.loads((settings.landing_dir / ".generated-2-50.jsonl.truth.json").read_text())
    assert truth["invalid"] == 5 and truth["seed"] == 2
    assert not list(settings.landing_dir.glob("*.tmp"))


def test_cli_output_option(settings, tmp_path: Path) -> None:
    path = tmp_path / "out" / "mine.jsonl"
    argv = ["generate", "--lines", "20", "--output", str(path), "--duplicate-rate", "0.2"]
    assert main([*argv, "--start-date", "2020-02-28", "--days", "2"]) == 0
    truth = json.loads((tmp_path / "out" / "mine.jsonl.truth.json").read_text())
    assert truth["duplicates"] == 4 and truth["lines"] == 20
    check_against_truth(path, truth, date(2020, 2, 28), 2)


@pytest.mark.parametrize(
    "arguments",
    [
        ["--lines", "-1"],
        ["--lines", "5", "--invalid-rate", "1.5"],
        ["--lines", "5", "--duplicate-rate", "-0.1"],
        ["--lines", "5", "--invalid-rate", "0.7", "--duplicate-rate", "0.7"],
        ["--lines", "5", "--days", "0"],
        ["--lines", "5", "--start-date", "2019/01/01"],
    ],
)
def test_bad_arguments_exit_2(settings, capsys, arguments) -> None:
    assert main(["generate", *arguments]) == 2
    assert capsys.readouterr().err.startswith("event-platform generate: ")
    assert not list(settings.landing_dir.iterdir())
