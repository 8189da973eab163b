"""Every reason code of the default contract, through the real parser and pandera schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from event_platform.contract import EVENTS_CONTRACT
from event_platform.ingest.ingestion import ingest_file
from event_platform.ingest.lines import read_line_chunks
from event_platform.ingest.validation import Validator
from event_platform.reconcile import reconcile_partition
from event_platform.store.connection import connect
from event_platform_tests.conftest import BASE_EVENT, event_line


def validate_lines(tmp_path: Path, raw: bytes, chunk_bytes: int = 1 << 20):
    path = tmp_path / "input.jsonl"
    path.write_bytes(raw)
    validator = Validator(EVENTS_CONTRACT, frozenset(range(1, 11)))
    valid, rejected = [], []
    for chunk in read_line_chunks(path, chunk_bytes=chunk_bytes):
        result = validator.validate(chunk)
        valid += result.valid.to_dicts()
        rejected += result.rejected.to_dicts()
    validator.close()
    return valid, rejected


def reasons_of(tmp_path: Path, line: str | bytes) -> list[str]:
    raw = line if isinstance(line, bytes) else line.encode()
    valid, rejected = validate_lines(tmp_path, raw + b"\n")
    if valid:
        return []
    assert len(rejected) == 1
    return sorted(rejected[0]["reasons"])


def nested(data: object) -> str:
    record = dict(BASE_EVENT)
    record["data"] = data
    return json.dumps(record)


def with_keys(**changes: object) -> str:
    record = dict(BASE_EVENT)
    for key, value in changes.items():
        if value is KeyError:
            record.pop(key)
        else:
            record[key] = value
    return json.dumps(record)


CASES = {
    "valid": (event_line(), []),
    "valid, other key order (slow path)": (
        json.dumps(dict(reversed(list(json.loads(event_line()).items())))),
        [],
    ),
    "valid, escaped string (slow path)": (event_line().replace("@", "\\u0040"), []),
    "valid, no spaces": (json.dumps(json.loads(event_line()), separators=(",", ":")), []),
    "empty": ("", ["empty_line"]),
    "white space only": (" \t ", ["empty_line"]),
    "truncated": (event_line()[:40], ["malformed_json"]),
    "trailing comma": (event_line()[:-1] + ",}", ["malformed_json"]),
    "trailing content": (event_line() + " x", ["malformed_json"]),
    "two values": (event_line() + event_line(), ["malformed_json"]),
    "NaN": (event_line().replace(" 7,", " NaN,"), ["malformed_json"]),
    "Infinity": (event_line().replace(" 7,", " Infinity,"), ["malformed_json"]),
    "single quotes": ("{'event_type': 7}", ["malformed_json"]),
    "leading zero number": (event_line().replace(" 7,", " 07,"), ["malformed_json"]),
    "array": ("[1, 2]", ["not_an_object"]),
    "number": ("5", ["not_an_object"]),
    "string": ('"event"', ["not_an_object"]),
    "null": ("null", ["not_an_object"]),
    "missing event_type": (with_keys(event_type=KeyError), ["missing_field:event_type"]),
    "missing data": (with_keys(data=KeyError), ["missing_field:data"]),
    "missing phone": (
        nested({"user_email": "a@b.co"}),
        ["missing_field:data.phone_number"],
    ),
    "unexpected top-level": (with_keys(extra=1), ["unexpected_field:extra"]),
    "unexpected nested": (
        nested({"user_email": "a@b.co", "phone_number": "0603728764", "x": 1}),
        ["unexpected_field:data.x"],
    ),
    "duplicate key": (
        event_line().replace('"event_type": 7,', '"event_type": 7, "event_type": 8,'),
        ["duplicate_field:event_type"],
    ),
    "event_type true": (event_line(event_type=True), ["wrong_type:event_type"]),
    "event_type 3.0": (event_line().replace(" 7,", " 3.0,"), ["wrong_type:event_type"]),
    "event_type 1e2": (event_line().replace(" 7,", " 1e2,"), ["wrong_type:event_type"]),
    "event_type string": (event_line(event_type="7"), ["wrong_type:event_type"]),
    "event_type null": (event_line(event_type=None), ["wrong_type:event_type"]),
    "event_type 0": (event_line(event_type=0), ["out_of_range:event_type"]),
    "event_type 11": (event_line(event_type=11), ["out_of_range:event_type"]),
    "event_type -0": (event_line().replace(" 7,", " -0,"), ["out_of_range:event_type"]),
    "event_type huge": (event_line(event_type=10**30), ["out_of_range:event_type"]),
    "event_time number": (event_line(event_time=20190104), ["wrong_type:event_time"]),
    "event_time Feb 30": (
        event_line(event_time="2019-02-30 10:00:00"),
        ["invalid_format:event_time"],
    ),
    "event_time leap second": (
        event_line(event_time="2019-01-04 23:59:60"),
        ["invalid_format:event_time"],
    ),
    "event_time hour 24": (
        event_line(event_time="2019-01-04 24:00:00"),
        ["invalid_format:event_time"],
    ),
    "event_time with T": (
        event_line(event_time="2019-01-04T05:07:26"),
        ["invalid_format:event_time"],
    ),
    "event_time with zone": (
        event_line(event_time="2019-01-04 05:07:26Z"),
        ["invalid_format:event_time"],
    ),
    "event_time fraction": (
        event_line(event_time="2019-01-04 05:07:26.5"),
        ["invalid_format:event_time"],
    ),
    "event_time padded": (
        event_line(event_time=" 2019-01-04 05:07:26"),
        ["invalid_format:event_time"],
    ),
    "event_time non-ASCII digits": (
        event_line(event_time="٢٠١٩-01-04 05:07:26"),
        ["invalid_format:event_time"],
    ),
    "event_time year 0000": (
        event_line(event_time="0000-02-29 10:00:00"),
        ["invalid_format:event_time"],
    ),
    "event_time year 0001 is real": (event_line(event_time="0001-01-01 00:00:00"), []),
    "event_time year 9999 is real": (event_line(event_time="9999-12-31 23:59:59"), []),
    "processing_date year 0000": (
        event_line(processing_date="0000-01-01"),
        ["invalid_format:processing_date"],
    ),
    "processing_date slashes": (
        event_line(processing_date="2019/01/04"),
        ["invalid_format:processing_date"],
    ),
    "processing_date Feb 29 2019": (
        event_line(processing_date="2019-02-29"),
        ["invalid_format:processing_date"],
    ),
    "processing_date Feb 29 2020 is real": (
        event_line(processing_date="2020-02-29", event_time="2020-02-29 00:00:00"),
        [],
    ),
    "processing_date list": (event_line(processing_date=[]), ["wrong_type:processing_date"]),
    "data string": (nested("x"), ["wrong_type:data"]),
    "data array": (nested([]), ["wrong_type:data"]),
    "email no at": (
        event_line(**{"data.user_email": "no-at.com"}),
        ["invalid_format:data.user_email"],
    ),
    "email two ats": (
        event_line(**{"data.user_email": "a@b@c.com"}),
        ["invalid_format:data.user_email"],
    ),
    "email short tld": (
        event_line(**{"data.user_email": "a@b.c"}),
        ["invalid_format:data.user_email"],
    ),
    "email non-ASCII": (
        event_line(**{"data.user_email": "é@b.com"}),
        ["invalid_format:data.user_email"],
    ),
    "email number": (event_line(**{"data.user_email": 5}), ["wrong_type:data.user_email"]),
    "phone number type": (
        event_line(**{"data.phone_number": 603728764}),
        ["wrong_type:data.phone_number"],
    ),
    "phone too short": (
        event_line(**{"data.phone_number": "12345"}),
        ["invalid_format:data.phone_number"],
    ),
    "phone too long": (
        event_line(**{"data.phone_number": "1" * 16}),
        ["invalid_format:data.phone_number"],
    ),
    "phone dashes": (
        event_line(**{"data.phone_number": "06-03-72"}),
        ["invalid_format:data.phone_number"],
    ),
    "phone Arabic-Indic digits": (
        event_line(**{"data.phone_number": "٠٦٠٣٧٢٨٧٦٤"}),
        ["invalid_format:data.phone_number"],
    ),
    "several reasons at once": (
        json.dumps({"event_type": 42, "event_time": "x", "data": {"user_email": "y"}, "z": 1}),
        [
            "invalid_format:data.user_email",
            "invalid_format:event_time",
            "missing_field:data.phone_number",
            "missing_field:processing_date",
            "out_of_range:event_type",
            "unexpected_field:z",
        ],
    ),
}


@pytest.mark.parametrize(("line", "expected"), CASES.values(), ids=CASES.keys())
def test_reason_codes(tmp_path: Path, line: str, expected: list[str]) -> None:
    assert reasons_of(tmp_path, line) == sorted(expected)


def test_invalid_utf8_is_rejected_with_its_exact_bytes(tmp_path: Path) -> None:
    """The rejected row is the store's only copy of the line: its bytes, not a decoding."""
    raw = b"\xc3(" + event_line().encode().replace(b"user0", b"u\xff\xfe@")
    valid, rejected = validate_lines(tmp_path, raw + b"\n")
    assert valid == []
    assert rejected[0]["reasons"] == ["malformed_json"]
    assert rejected[0]["raw_line"] == raw


def test_file_level_line_rules(tmp_path: Path) -> None:
    """BOM ignored, CRLF stripped, last line counted without a final newline, numbers from 1."""
    raw = b"\xef\xbb\xbf" + event_line(1).encode() + b"\r\n\r\n" + event_line(2).encode()
    valid, rejected = validate_lines(tmp_path, raw)
    assert [row["line_number"] for row in valid] == [1, 3]
    assert [(row["line_number"], row["reasons"]) for row in rejected] == [(2, ["empty_line"])]
    assert valid[0]["user_email"] == "user1@example.com"


@pytest.mark.parametrize("other_newline", [b"\n", b"\r\n"], ids=["mixed", "crlf"])
def test_kept_bytes_are_the_lines_own(tmp_path: Path, other_newline: bytes) -> None:
    """The bytes kept for a line (a rejection's raw_line, a duplicate's) are the line's own up
    to its `\\n`, a carriage return included, on either parser path, whether one line or every
    line ends in CRLF."""
    out_of_range = event_line(event_type=11)  # the fast path's shape, rejected by value
    reordered = json.dumps(dict(reversed(list(json.loads(event_line(1)).items()))))  # JSON path
    lines = [event_line(1), out_of_range, reordered, "not json"]
    raw = b"".join(
        line.encode() + (b"\r\n" if number == 2 else other_newline)
        for number, line in enumerate(lines, start=1)
    )
    valid, rejected = validate_lines(tmp_path, raw)
    kept = {row["line_number"]: row["raw"] for row in valid}
    kept |= {row["line_number"]: row["raw_line"] for row in rejected}
    assert kept == dict(enumerate(raw.split(b"\n")[:-1], start=1))


def test_empty_file_has_no_lines(tmp_path: Path) -> None:
    assert validate_lines(tmp_path, b"") == ([], [])


def test_a_lone_newline_is_one_empty_line(tmp_path: Path) -> None:
    valid, rejected = validate_lines(tmp_path, b"\n")
    assert valid == [] and [row["reasons"] for row in rejected] == [["empty_line"]]


def test_one_megabyte_line(tmp_path: Path) -> None:
    """A line far longer than the read block is read whole and keeps its numbering."""
    local = "a" * 1_000_000
    big = event_line(**{"data.user_email": local + "@example.com"})
    raw = (event_line(1) + "\n" + big + "\n" + event_line(2)[:-1] + "\n").encode()
    valid, rejected = validate_lines(tmp_path, raw, chunk_bytes=64 * 1024)
    assert [row["line_number"] for row in valid] == [1, 2]
    assert len(valid[1]["user_email"]) == len(local) + len("@example.com")
    assert [(row["line_number"], row["reasons"]) for row in rejected] == [(3, ["malformed_json"])]


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"], ids=["plain", "bom"])
def test_results_do_not_depend_on_chunk_size(tmp_path: Path, bom: bytes) -> None:
    lines = [event_line(i) if i % 7 else "oops" for i in range(2000)]
    raw = bom + "\n".join(lines).encode()
    whole = validate_lines(tmp_path, raw, chunk_bytes=1 << 24)
    tiny = validate_lines(tmp_path, raw, chunk_bytes=997)
    assert whole == tiny
    assert len(whole[0]) + len(whole[1]) == 2000
    assert whole[0][0]["line_number"] == 2  # line 1 is "oops"; the BOM never shifts numbers


def test_allowed_event_types_are_configurable(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(event_line(event_type=11) + "\n")
    validator = Validator(EVENTS_CONTRACT, frozenset({11, 12}))
    (chunk,) = read_line_chunks(path)
    assert len(validator.validate(chunk).valid) == 1


def test_year_zero_is_not_a_real_date(tmp_path: Path) -> None:
    """There is no year 0 in the calendar: DuckDB stores 0000-02-29 as 0001-02-29 (BC) and renders
    it so, so such a line, once accepted, could never reconcile with its own file."""
    source = tmp_path / "years.jsonl"
    lines = [
        event_line(1, event_time="0000-02-29 05:07:26"),
        event_line(2, processing_date="0000-01-01"),
        event_line(3, event_time="0001-01-01 00:00:00", processing_date="0001-01-01"),
    ]
    source.write_text("\n".join(lines) + "\n")
    with connect(tmp_path / "warehouse.duckdb") as con:
        result = ingest_file(source, con, run_id="r1")
        report = reconcile_partition(source, con, run_id="r1")
    assert (result.stored, result.rejected) == (1, 2)
    assert report.passed, report


def test_minus_zero_is_the_integer_zero_on_both_parser_paths(tmp_path: Path) -> None:
    """`-0` is a JSON integer equal to 0: where 0 is allowed, the line is valid and stored and
    hashed as 0, whether the fast path (contract key order) or the JSON kernel reads it."""
    fast = event_line(1).replace('"event_type": 7,', '"event_type": -0,')
    slow = json.dumps(dict(reversed(list(json.loads(event_line(2)).items()))))
    slow = slow.replace('"event_type": 7', '"event_type": -0')
    zero = event_line(3, event_type=0)
    path = tmp_path / "zero.jsonl"
    path.write_text("\n".join([fast, slow, zero]) + "\n")
    validator = Validator(EVENTS_CONTRACT, frozenset({0, 1}))
    (chunk,) = read_line_chunks(path)
    result = validator.validate(chunk)
    validator.close()
    assert result.rejected.is_empty(), result.rejected.to_dicts()
    assert result.valid["event_type"].to_list() == [0, 0, 0]
    assert result.valid["canonical"].str.starts_with("0\x1f").all()


def test_duplicated_keys_are_reported_in_order_of_first_appearance(tmp_path: Path) -> None:
    """Stored reasons are one fixed order, whatever the platform: DuckDB documents that
    `list_distinct` may order its result differently on different platforms."""
    line = event_line().replace(
        '"event_type": 7,', '"b": 1, "a": 2, "b": 3, "event_type": 7, "a": 4, "c": 5, "c": 5,'
    )
    valid, rejected = validate_lines(tmp_path, line.encode() + b"\n")
    assert valid == []
    assert [r for r in rejected[0]["reasons"] if r.startswith("duplicate_field")] == [
        "duplicate_field:b",
        "duplicate_field:a",
        "duplicate_field:c",
    ]
