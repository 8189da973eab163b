"""Production validation and the independent re-derivation agree, line by line.

`reconcile.independent` re-implements the contract with Python's `json` and plain rules; here
both run over the generator's files (with their truth), hand-written edge cases and
hypothesis-generated lines, and must agree on verdict, reasons (in stored order), values and
`event_hash`. Production is read where it is stored (a DuckDB warehouse) or, for the many small
generated batches, straight from the `Validator`.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from event_platform.contract import EVENTS_CONTRACT
from event_platform.generator import generate_file
from event_platform.ingest.hashing import with_event_hash
from event_platform.ingest.ingestion import ingest_file
from event_platform.ingest.lines import LineChunk
from event_platform.ingest.validation import Validator
from event_platform.reconcile import reconcile_partition
from event_platform.reconcile.independent import (
    Derived,
    _decode,
    _decode_iteratively,
    rederive,
    split_lines,
)
from event_platform.store.connection import connect
from event_platform_tests.conftest import event_line

ALLOWED = frozenset(range(1, 11))
MAX_LINE_BYTES = 1 << 20
COLUMNS = ("event_type", "event_time", "processing_date", "user_email", "phone_number")
DUPLICATE = ("duplicate_event",)

# What production says about one line: (valid, reasons, values, event_hash); a duplicate is
# (True, DUPLICATE, None, None), since its values are stored only under the earlier line.
Verdict = tuple[bool, tuple[str, ...], dict[str, object] | None, str | None]


def stored(
    tmp_path: Path,
    raw: bytes,
    allowed: frozenset[int] = ALLOWED,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> dict[int, Verdict]:
    """Ingest `raw` as one file into a fresh warehouse and read every line's row back."""
    source = tmp_path / "lines.jsonl"
    source.write_bytes(raw)
    with connect(tmp_path / "warehouse.duckdb") as con:
        ingest_file(
            source,
            con,
            run_id="r1",
            allowed_event_types=allowed,
            max_line_bytes=max_line_bytes,
            chunk_bytes=64 * 1024,
        )
        report = reconcile_partition(
            source, con, run_id="r2", allowed_event_types=allowed, max_line_bytes=max_line_bytes
        )
        assert report.passed, report
        events = con.execute(
            f"SELECT line_number, event_hash, {', '.join(COLUMNS)} FROM events"
        ).fetchall()
        rejected = con.execute("SELECT line_number, reasons FROM rejected_events").fetchall()
    verdicts: dict[int, Verdict] = {}
    for number, event_hash, *values in events:
        verdicts[number] = (True, (), dict(zip(COLUMNS, values, strict=True)), event_hash)
    for number, reasons in rejected:
        assert number not in verdicts
        if tuple(reasons) == DUPLICATE:
            verdicts[number] = (True, DUPLICATE, None, None)
        else:
            verdicts[number] = (False, tuple(reasons), None, None)
    return verdicts


@cache
def validator(allowed: frozenset[int]) -> Validator:
    return Validator(EVENTS_CONTRACT, allowed)


def validated(lines: list[bytes], allowed: frozenset[int] = ALLOWED) -> dict[int, Verdict]:
    """Production's verdicts from the Validator itself: values as polars hands them to DuckDB."""
    chunk = LineChunk(1, pa.array(lines, pa.large_binary()))
    planned, rejected = validator(allowed).validate_lazy(chunk)
    valid = with_event_hash(planned).collect()
    verdicts: dict[int, Verdict] = {}
    for row in valid.to_dicts():
        values = {column: row[column] for column in COLUMNS}
        verdicts[row["line_number"]] = (True, (), values, row["event_hash"])
    for row in rejected.to_dicts():
        verdicts[row["line_number"]] = (False, tuple(row["reasons"]), None, None)
    return verdicts


def derived(lines: list[bytes], allowed: frozenset[int] = ALLOWED) -> dict[int, Derived]:
    return {
        number: rederive(number, line, allowed, MAX_LINE_BYTES)
        for number, line in enumerate(lines, start=1)
    }


def assert_agree(production: dict[int, Verdict], independent: dict[int, Derived]) -> None:
    assert sorted(production) == sorted(independent)
    hashes = {event_hash for _, _, _, event_hash in production.values() if event_hash}
    disagreements = []
    for number, mine in independent.items():
        valid, reasons, values, event_hash = production[number]
        if reasons == DUPLICATE:
            # A duplicate's event is stored under the line it repeats.
            same = mine.valid and mine.event_hash in hashes
        else:
            same = (mine.valid, mine.reasons, mine.values, mine.event_hash) == (
                valid,
                reasons,
                values,
                event_hash,
            )
        if not same:
            disagreements.append((number, production[number], mine))
    assert not disagreements, disagreements


# --- (a) the generator's files and their truth --------------------------------------------------


@pytest.mark.parametrize("seed", [3, 11])
def test_generated_files_agree_with_the_store_and_the_truth(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "generated.jsonl"
    result = generate_file(path, 3_000, invalid_rate=0.1, duplicate_rate=0.03, seed=seed)
    lines = split_lines(path.read_bytes())
    independent = derived(lines)
    assert_agree(stored(tmp_path, path.read_bytes()), independent)

    truth = json.loads(result.truth_path.read_text())
    invalid = {int(number): reason for number, reason in truth["invalid_lines"].items()}
    assert {n: d.reasons for n, d in independent.items() if not d.valid} == {
        number: (reason,) for number, reason in invalid.items()
    }
    assert sum(d.valid for d in independent.values()) == truth["valid"] + truth["duplicates"]


# --- (b) edge cases -----------------------------------------------------------------------------

BASE = event_line(0)


def edited(old: str, new: str, index: int = 0) -> bytes:
    line = event_line(index)
    assert old in line, old
    return line.replace(old, new, 1).encode()


def member(text: str, index: int) -> bytes:
    """A valid line with `text` inserted as members after event_type."""
    return edited('"event_type": 7,', f'"event_type": 7, {text},', index)


EDGE_CASES: list[bytes] = [
    BASE.encode(),
    # duplicate keys, at both levels, with conflicting types and values
    edited('"event_type": 7,', '"event_type": 7, "event_type": 8,', 1),
    edited('"event_type": 7,', '"event_type": "7", "event_type": 7,', 2),
    edited('"event_type": 7,', '"event_type": 70, "event_type": 7,', 3),
    edited('"event_type": 7,', '"b": 1, "a": 2, "b": 3, "event_type": 7, "a": 4, "c": 5, "c": 5,'),
    edited('{"user_email"', '{"user_email": 5, "user_email"', 4),
    edited('"data": {', '"data": 1, "data": {', 5),
    edited('"processing_date"', '"data": {}, "processing_date"', 6),
    # nested unexpected keys, and keys spelled with escapes
    edited('{"user_email"', '{"x": {"y": [1, {"z": null}]}, "user_email"', 7),
    edited('{"user_email"', '{"": 1, "user_email"', 8),
    edited('"event_type"', '"\\u0065vent_type"', 9),
    member('"\\u00e9\\"\\\\": 1', 10),
    member('"a\\u0000b": 1', 11),
    member('"data": {"user_email": "x@y.zz", "phone_number": "123456"}', 12),
    # numbers
    edited(" 7,", " 1e3,"),
    edited(" 7,", " 7.0,"),
    edited(" 7,", " 7E0,"),
    edited(" 7,", " -0,"),
    edited(" 7,", " -7,"),
    edited(" 7,", " 07,"),
    edited(" 7,", " 0,"),
    edited(" 7,", " 10,", 13),
    edited(" 7,", " 11,"),
    edited(" 7,", " 1" + "0" * 30 + ","),
    edited(" 7,", " 18446744073709551615,"),
    edited(" 7,", " 18446744073709551616,"),
    edited(" 7,", " -9223372036854775809,"),
    edited(" 7,", " 1" + "0" * 5000 + ","),
    edited(" 7,", " 1.5e999,"),
    edited(" 7,", " NaN,"),
    edited(" 7,", " -Infinity,"),
    edited(" 7,", " +7,"),
    member('"n": 1.', 14),
    member('"n": .5', 15),
    member('"n": -', 16),
    member('"n": 1.5e999', 17),
    edited('"0600000018"', "600000018", 18),
    # strings: escapes, surrogates, NUL, control characters, empty
    edited("user19@", "user\\u0031\\u0039@", 19),
    edited("user20@", "\\ud83d\\ude00user20@", 20),
    edited("user21@", "\\ud800user21@", 21),
    edited("user22@", "\\udfffuser22@", 22),
    edited("user23@", "\\ud800\\u0041user23@", 23),
    edited("user24@", "\\u0000user24@", 24),
    edited("user25@", "user\tx@", 25),
    edited("user26@", "user\x7f26@", 26),
    edited("user27@", "user\\x27@", 27),
    edited('"user28@example.com"', '""', 28),
    edited('"0600000029"', '""', 29),
    edited('"0600000030"', '"0600000030\\n"', 30),
    edited('"0600000031"', '"٠٦٠٠٠٠٠٠٣١"', 31),
    edited("2019-01-04 05:07:26", "2019-01-04\\u002005:07:26", 32),
    member('"s": "nan, }"', 33),
    member('"s": "a\\/b"', 34),
    # BOM, CRLF, trailing white space, blank lines
    b"\xef\xbb\xbf" + event_line(35).encode(),
    event_line(36).encode() + b"\r",
    event_line(37).encode() + b"\r\r",
    event_line(38).encode() + b" \t ",
    event_line(39).encode() + b"\x0c",
    event_line(40).encode().replace(b", ", b",\r"),
    b"",
    b"\r",
    b" \t\x0b\x0c ",
    b"\x00",
    # invalid UTF-8: a lone continuation, an overlong form, an encoded surrogate, beyond U+10FFFF
    b"\x80" + event_line(41).encode(),
    event_line(42).encode().replace(b"user42", b"user\xc0\xaf"),
    event_line(43).encode().replace(b"user43", b"user\xed\xa0\x80"),
    event_line(44).encode().replace(b"user44", b"user\xf4\x90\x80\x80"),
    event_line(45).encode().replace(b"user45", b"user\xef\xbf\xbe"),
    # timestamps and dates
    edited("2019-01-04 05:07:26", "0000-02-29 05:07:26", 46),
    edited("2019-01-04 05:07:26", "0001-01-01 00:00:00", 47),
    edited("2019-01-04 05:07:26", "9999-12-31 23:59:59", 48),
    edited('"2019-01-04"}', '"9999-12-31"}', 49),
    edited('"2019-01-04"}', '"0000-01-01"}', 50),
    edited("2019-01-04 05:07:26", "2020-02-29 12:00:00", 51),
    edited("2019-01-04 05:07:26", "2019-02-29 12:00:00", 52),
    edited("2019-01-04 05:07:26", "1900-02-29 12:00:00", 53),
    edited("2019-01-04 05:07:26", "2000-02-29 12:00:00", 54),
    edited("2019-01-04 05:07:26", "2019-01-04 05:07:26+02:00", 55),
    edited("2019-01-04 05:07:26", "2019-01-04 05:07:26Z", 56),
    edited("2019-01-04 05:07:26", "2019-01-04T05:07:26", 57),
    edited("2019-01-04 05:07:26", "2019-01-04 23:59:60", 58),
    edited("2019-01-04 05:07:26", "2019-1-4 5:07:26", 59),
    edited("2019-01-04 05:07:26", "12019-01-04 05:07:26", 60),
    edited("2019-01-04 05:07:26", "", 61),
    edited('"2019-01-04"}', '"2019-13-01"}', 62),
    edited('"2019-01-04"}', '"2019-04-31"}', 63),
    edited('"2019-01-04"}', '"2024-02-29"}', 64),
    # deep nesting, beyond Python's recursion limit too
    member('"deep": ' + "[" * 5_000 + "]" * 5_000, 65),
    member('"deep": ' + '{"a": ' * 3_000 + "1" + "}" * 3_000, 66),
    member('"deep": ' + "[" * 5_000 + "]" * 4_999, 67),
    edited('{"user_email"', '{"deep": ' + "[" * 2_000 + "]" * 2_000 + ', "user_email"', 68),
    # not objects, not JSON
    b"[1, 2]",
    b'"event"',
    b" 5 ",
    b"true",
    b"null",
    b"tru",
    b"{}",
    b'{"a": 1}//',
    b"{'event_type': 7}",
    event_line(69).encode()[:-1] + b", }",
    event_line(70).encode() + event_line(71).encode(),
    b'{"event_type": 42, "event_time": "x", "data": {"user_email": "y"}, "z": 1}',
    b'{"data": {"phone_number": "1", "q": 1, "user_email": "y", "user_email": 3}, "z": 1, '
    b'"processing_date": "2019-13-01", "event_time": "2019-01-01T00:00:00", "event_type": 0}',
    # over-long lines: cut, whatever they hold
    event_line(72).encode() + b" " * MAX_LINE_BYTES,
    b"x" * (MAX_LINE_BYTES + 1),
    b"y" * MAX_LINE_BYTES,
]


def test_edge_cases_agree_with_the_store(tmp_path: Path) -> None:
    raw = b"\xef\xbb\xbf" + b"\n".join(EDGE_CASES)
    lines = split_lines(raw)
    assert len(lines) == len(EDGE_CASES)
    independent = derived(lines)
    assert_agree(stored(tmp_path, raw), independent)
    # The cases reach what they are meant to: each reason class and each verdict.
    reasons = {reason.split(":")[0] for d in independent.values() for reason in d.reasons}
    assert reasons == {
        "empty_line",
        "line_too_long",
        "malformed_json",
        "not_an_object",
        "missing_field",
        "unexpected_field",
        "duplicate_field",
        "wrong_type",
        "out_of_range",
        "invalid_format",
    }


def test_edge_cases_agree_where_other_event_types_are_allowed(tmp_path: Path) -> None:
    """0 and the huge integers allowed: `-0` is 0; an allowed 64-bit value is stored as such."""
    allowed = frozenset({0, 7, 11, 2**31 - 1})
    lines = [
        *EDGE_CASES[:40],
        edited(" 7,", f" {2**31 - 1},", 90),
        edited(" 7,", f" {2**31},", 91),
    ]
    raw = b"\n".join(lines) + b"\n"
    assert_agree(stored(tmp_path, raw, allowed), derived(lines, allowed))


def test_deep_nesting_decodes_alike_with_and_without_recursion() -> None:
    for text in ('{"a": [1, {"b": "c", "b": -0}], "d": 1.5e3}', "[" * 50 + "]" * 50, ' "x" '):
        assert _decode_iteratively(text) == _decode(text)
    for text in ("[1,]", '{"a" 1}', "[1 2]", "01", '{"a": 1', "[]]", '"\\x"', "{,}"):
        with pytest.raises(ValueError):
            _decode_iteratively(text)
        with pytest.raises(ValueError):
            _decode(text)


# --- (c) generated lines ------------------------------------------------------------------------

SPACE = st.sampled_from(["", " ", "  ", "\t", "\r"])


def json_string(text: str, ascii_only: bool) -> str:
    return json.dumps(text, ensure_ascii=ascii_only)


def strings(alphabet: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[str]:
    text = st.text(alphabet, max_size=20) if alphabet is not None else st.text(max_size=20)
    return st.builds(json_string, text, st.booleans())


def padded(low: int, high: int, width: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda n: str(n).zfill(width))


def timestamps(low: int, high: int) -> st.SearchStrategy[str]:
    """`YYYY-MM-DD HH:MM:SS`-like text; each part within [low, high] times its natural range."""
    parts = st.tuples(
        padded(low, 10_000 if high else 9_999, 4),
        padded(1 - low, 12 + high, 2),
        padded(1 - low, 28 + 4 * high, 2),
        st.sampled_from([" ", "T", "  "] if high else [" "]),
        padded(0, 23 + 2 * high, 2),
        padded(0, 59 + 2 * high, 2),
        padded(0, 59 + 2 * high, 2),
        st.sampled_from(["", "", "", "Z", ".5", "+01:00"] if high else [""]),
    )
    return parts.map(lambda p: f"{p[0]}-{p[1]}-{p[2]}{p[3]}{p[4]}:{p[5]}:{p[6]}{p[7]}")


def dates(low: int, high: int) -> st.SearchStrategy[str]:
    parts = st.tuples(
        padded(low, 9_999 + high, 4), padded(1 - low, 12 + high, 2), padded(1 - low, 28 + high, 2)
    )
    return parts.map(lambda p: f"{p[0]}-{p[1]}-{p[2]}")


def as_json(text: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.builds(json_string, text, st.booleans())


def mostly(good: st.SearchStrategy[str], *bad: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """`good` nine times in ten, so that whole lines are often valid; one of `bad` otherwise."""
    return st.integers(0, 9).flatmap(lambda k: st.one_of(*bad) if k == 0 else good)


SCALARS = st.one_of(
    st.integers(-20, 20).map(str),
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(json.dumps),
    st.sampled_from(["-0", "1e2", "7.0", "7E0", "1E400", "-0.0", "true", "false", "null"]),
    st.sampled_from(["18446744073709551616", "NaN", "[]", "{}", "[1, 2]", '{"a": 1}']),
    strings(),
)
EMAILS = st.from_regex(r"[a-z0-9._%+-]{1,8}@([a-z0-9-]{1,5}\.){1,2}[a-z]{2,4}", fullmatch=True)
VALUES = {
    "event_type": mostly(st.integers(1, 10).map(str), st.integers(-2, 12).map(str), SCALARS),
    "event_time": mostly(as_json(timestamps(0, 0)), as_json(timestamps(1, 2)), SCALARS),
    "processing_date": mostly(as_json(dates(0, 0)), as_json(dates(1, 4)), SCALARS),
    "user_email": mostly(
        as_json(EMAILS),
        as_json(st.from_regex(r"[a-z0-9._%+-]{1,8}@([a-z0-9-]{1,5}\.){1,2}[a-z]{1,4}")),
        strings(st.characters(codec="utf-8")),
        SCALARS,
    ),
    "phone_number": mostly(
        as_json(st.text("0123456789", min_size=6, max_size=15)),
        as_json(st.text("0123456789\u0660x-", min_size=0, max_size=17)),
        SCALARS,
    ),
}
EXTRA_KEYS = st.sampled_from(["x", "", "event_type", "data", "user_email", "\\u0078", "é"])


@st.composite
def objects(draw: st.DrawFn, fields: tuple[str, ...]) -> str:
    members: list[tuple[str, str]] = []
    for name in fields:
        for _ in range(draw(st.sampled_from([1] * 20 + [0, 2]))):
            if name == "data":
                shaped = draw(st.integers(0, 9))
                value = draw(objects(("user_email", "phone_number"))) if shaped else draw(SCALARS)
            else:
                value = draw(VALUES[name])
            members.append((json.dumps(name), value))
    for _ in range(draw(st.sampled_from([0] * 6 + [1, 2]))):
        members.append((f'"{draw(EXTRA_KEYS)}"', draw(SCALARS)))
    if draw(st.booleans()):
        members = draw(st.permutations(members))
    space = draw(SPACE)
    body = f"{space},{space}".join(f"{key}{space}:{draw(SPACE)}{value}" for key, value in members)
    return "{" + draw(SPACE) + body + draw(SPACE) + "}"


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.binary(max_size=60)).replace(b"\n", b"")
    line = draw(objects(("event_type", "event_time", "data", "processing_date")))
    raw = line.encode()
    if kind == 1:
        cut = draw(st.integers(0, len(raw)))
        raw = raw[:cut] + draw(st.sampled_from([b"", b",", b"]", b"\r", b"\xff", b" x"]))
    elif kind == 2:
        raw = draw(st.sampled_from([b"[", b" ", b"\xef\xbb\xbf", b"\t"])) + raw
    elif kind == 4:
        raw = b"[" + raw + b"]" if draw(st.booleans()) else draw(SCALARS).encode()
    elif kind == 3:
        raw += draw(st.sampled_from([b"\r", b" \r", b"\r\r", b"\x0c", b"}", b"]"]))
    return raw


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example],
)
@given(st.lists(lines(), min_size=1, max_size=20))
def test_generated_lines_agree_with_the_validator(batch: list[bytes]) -> None:
    assert_agree(validated(batch), derived(batch))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(lines(), min_size=1, max_size=20), st.frozensets(st.integers(-3, 12), max_size=6))
def test_generated_lines_agree_for_any_allowed_set(
    batch: list[bytes], allowed: frozenset[int]
) -> None:
    assert_agree(validated(batch, allowed), derived(batch, allowed))


def test_the_store_reads_back_what_the_validator_hands_over(tmp_path: Path) -> None:
    """The Validator-level comparisons above stand for the stored values: one batch both ways."""
    batch = [event_line(n).encode() for n in range(5)] + EDGE_CASES[40:60]
    from_validator = validated(batch)
    from_store = stored(tmp_path, b"\n".join(batch) + b"\n")
    for number, verdict in from_store.items():
        if verdict[1] != DUPLICATE:
            assert from_validator[number] == verdict


def test_duckdb_returns_the_value_types_derived_promises() -> None:
    valid = rederive(1, event_line(1).encode(), ALLOWED, MAX_LINE_BYTES)
    assert valid.values is not None
    with duckdb.connect() as con:
        row = con.execute(
            "SELECT ?::INTEGER, ?::TIMESTAMP, ?::DATE, ?::VARCHAR, ?::VARCHAR",
            [valid.values[column] for column in COLUMNS],
        ).fetchone()
    assert dict(zip(COLUMNS, row, strict=True)) == valid.values
