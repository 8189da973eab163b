"""The compiled fast path against the regex it replaces: the same lines matched, the same values.

Lines are generated around the contract's shape and then broken byte by byte, so the cases
that matter (an escape, a control character, a leading zero, a key out of order, white space
where JSON allows it and where it does not) come up far more often than in random text.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from event_platform.contract import EVENTS_CONTRACT
from event_platform.ingest import fast_shape
from event_platform.ingest.lines import read_line_chunks
from event_platform.ingest.parsing import StructuralParser
from event_platform_tests.conftest import event_line

PARSER = StructuralParser(EVENTS_CONTRACT)
LOCATOR = fast_shape.ShapeLocator(EVENTS_CONTRACT)

# Bytes that decide matches: structure, white space JSON allows and does not, escapes,
# control characters, digits and signs, multi-byte UTF-8.
PIECES = ['"', "\\", "{", "}", ",", ":", " ", "\t", "\r", "\f", "0", "-", "1", "9", "a", "\x01"]
PIECES += ["é", "💡", "\u2028", '\\"', '""', "00", "-0", "1e3", "1.0", "null", "[]"]


def regex_fields(lines: list[str]) -> pl.DataFrame:
    frame = pl.DataFrame({"line": lines}, schema={"line": pl.String})
    return (
        frame.select(pl.col("line").str.extract_groups(PARSER.fast_pattern).alias("fast"))
        .unnest("fast")
        .select(LOCATOR.outputs)
    )


def native_fields(lines: list[str]) -> tuple[int, pl.DataFrame]:
    return LOCATOR.locate(pa.array(lines, pa.large_string()))


@st.composite
def shaped_lines(draw: st.DrawFn, breaks: int = 3) -> str:
    """A line of the contract's shape, with white space added and then up to `breaks` pieces
    inserted or replaced."""
    record = json.loads(event_line(draw(st.integers(0, 10_000))))
    record["data"]["user_email"] = draw(
        st.sampled_from(["a@b.co", "", "x" * 13, "é@ü.de", "12@3.4"])
    )
    record["event_type"] = draw(st.sampled_from([0, 7, -3, 123456789012345678901234567890]))
    # Escaped non-ASCII takes the slow path, so only broken lines get it.
    ascii_only = draw(st.booleans()) if breaks else False
    space = st.sampled_from(["", " ", "  ", "\t", "\r", " \t\r"])

    def render(value: object) -> str:
        if not isinstance(value, dict):
            return json.dumps(value, ensure_ascii=ascii_only)
        members = [
            json.dumps(key) + draw(space) + ":" + draw(space) + render(item)
            for key, item in value.items()
        ]
        return (
            "{" + draw(space) + (draw(space) + "," + draw(space)).join(members) + draw(space) + "}"
        )

    text = draw(space) + render(record) + draw(space)
    for _ in range(draw(st.integers(0, breaks))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 2))
        text = text[:at] + draw(st.sampled_from([*PIECES, ""])) + text[at + cut :]
    return text


def test_the_compiled_fast_path_is_built() -> None:
    """CI builds the package with a C compiler, so the extension must be there: a build that
    silently fell back to the regex would pass every other test at twice the parse's CPU."""
    assert fast_shape.available()


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(shaped_lines(), min_size=1, max_size=40))
def test_the_compiled_fast_path_matches_what_the_regex_matches(lines: list[str]) -> None:
    matched, native = native_fields(lines)
    expected = regex_fields(lines)
    assert native.equals(expected)
    assert matched == expected[LOCATOR.outputs[0]].is_not_null().sum()


@settings(max_examples=100, deadline=None)
@given(st.lists(shaped_lines(breaks=0), min_size=1, max_size=20))
def test_unbroken_lines_take_the_fast_path(lines: list[str]) -> None:
    """The generator's own lines are the shape, so the comparison above sees matches too."""
    matched, native = native_fields(lines)
    assert matched == len(lines)
    assert native.equals(regex_fields(lines))


def test_long_and_short_values_and_a_sliced_array() -> None:
    """Values of up to 12 bytes live inside the view, longer ones point into the buffer; an
    array that starts part-way into its buffers must be read from its own offset."""
    lines = [
        event_line(i, **{"data.user_email": email})
        for i, email in enumerate(["a@b.co", "twelve@b.com", "thirteen@b.co", "x" * 500 + "@b.co"])
    ]
    array = pa.array(["junk", *lines, "{}"], pa.large_string()).slice(1, len(lines))
    matched, frame = LOCATOR.locate(array)
    assert matched == len(lines)
    assert frame["user_email"].to_list() == [
        json.loads(line)["data"]["user_email"] for line in lines
    ]
    assert frame.equals(regex_fields(lines))


def test_no_line_matches() -> None:
    matched, frame = native_fields(["", "{", "not json", '{"event_type": 1}'])
    assert matched == 0
    assert frame.null_count().row(0) == (4,) * len(LOCATOR.outputs)


def test_the_extension_refuses_buffers_that_do_not_fit() -> None:
    """Bad arguments are errors, never reads outside a buffer."""
    if not fast_shape.available():
        pytest.skip("the compiled fast path is not built")
    from event_platform.ingest import _shape

    offsets = pa.array([0, 4, 100], pa.int64()).buffers()[1]
    data = pa.py_buffer(b"{}{}")
    with pytest.raises(ValueError, match="outside the data buffer"):
        _shape.locate(LOCATOR.program, len(LOCATOR.outputs), offsets, data, 0, 2)
    with pytest.raises(ValueError, match="shorter than the lines"):
        _shape.locate(LOCATOR.program, len(LOCATOR.outputs), offsets, data, 1, 2)
    with pytest.raises(ValueError, match="malformed shape program"):
        _shape.locate(b"S\x09", len(LOCATOR.outputs), offsets, data, 0, 1)
    with pytest.raises(ValueError, match="malformed shape program"):
        _shape.locate(b"L\x09{", len(LOCATOR.outputs), offsets, data, 0, 1)


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_parse_is_the_same_on_both_fast_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, newline: bytes
) -> None:
    """The whole parse, fast rows and slow rows in line order, equal whichever fast path ran."""
    lines = [event_line(i) for i in range(50)]
    lines[3] = json.dumps(dict(reversed(list(json.loads(lines[3]).items()))))  # slow path
    lines[7] = lines[7].replace('"event_type": ', '"event_type":  \t')
    lines[9] = "not json"
    lines[11] = lines[11].replace('"event_type": ', '"event_type": 0')
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(newline.join(line.encode() for line in lines) + newline)
    (chunk,) = read_line_chunks(path)

    import duckdb

    con = duckdb.connect()
    native = StructuralParser(EVENTS_CONTRACT)
    monkeypatch.setenv(fast_shape.PARSER_ENV, "regex")
    regex = StructuralParser(EVENTS_CONTRACT)
    assert native.locator is not None and regex.locator is None
    native.prepare(con)
    parsed = native.parse(con, chunk)
    assert parsed.equals(regex.parse(con, chunk))
    assert parsed["shape_reasons"].is_null().sum() == 47


@pytest.mark.parametrize("stop", ["\\", "\x01", "\x1f", '"'])
def test_a_string_ends_where_the_first_stop_byte_is_wherever_it_falls(stop: str) -> None:
    """The matcher scans strings sixteen bytes at a time: a byte that ends or breaks the string
    must be found at every position of a block and of the tail after the last whole block."""
    lines = []
    for length in (15, 16, 17, 31, 32, 33, 48):
        lines.append(event_line(length, **{"data.user_email": "e" * length}))
        for at in range(length):
            email = "e" * at + stop + "e" * (length - at - 1)
            record = json.loads(event_line(at))
            record["data"]["user_email"] = "@"  # replaced below by the raw text
            lines.append(json.dumps(record).replace('"@"', f'"{email}"'))
    matched, native = native_fields(lines)
    expected = regex_fields(lines)
    assert native.equals(expected)
    assert matched == 7


def test_without_the_extension_the_parser_keeps_the_regex_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An install without a C compiler: the same parse through the regex, and one warning."""
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join([event_line(1), "not json", event_line(2)]) + "\n")
    (chunk,) = read_line_chunks(path)
    import duckdb

    con = duckdb.connect()
    native = StructuralParser(EVENTS_CONTRACT)
    native.prepare(con)
    expected = native.parse(con, chunk)
    monkeypatch.setattr(fast_shape, "_shape", None)
    fast_shape._say_not_built.cache_clear()
    with caplog.at_level("WARNING", logger=fast_shape.__name__):
        parser = StructuralParser(EVENTS_CONTRACT)
    assert parser.locator is None
    assert "compiled fast path is not built" in caplog.text
    assert parser.parse(con, chunk).equals(expected)
    with pytest.raises(RuntimeError, match="not built"):
        fast_shape.ShapeLocator(EVENTS_CONTRACT)
