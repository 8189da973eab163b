"""A second, independent implementation of the events contract, for reconciling by sample.

Reconciliation that re-runs the production path (`ingest.validation`) proves that the store holds
what that path computes, not that the path computes what the contract says: a bug in the DuckDB
JSON kernel, the compiled fast path (or its regex) or the pandera schema would be repeated
identically and pass. This module re-derives one line's verdict, reasons, stored values and
`event_hash` from the contract as documented (README's contract table, `contract/events.py` read as
a specification), sharing no code with the production path: it imports nothing from
`event_platform` at all. Lines are decoded by Python's strict UTF-8 codec, parsed by Python's
`json` with `object_pairs_hook` (to see every key, duplicates and order) and `parse_int` /
`parse_float` / `parse_constant` hooks (to see numbers' literal text and refuse NaN), checked by
plain comparisons and ASCII-only regular expressions, and hashed by `hashlib` over its own
canonical rendering. It works line by line in plain Python, so it runs over a seeded sample, never
on the hot path.

Where the documentation leaves a detail open, this follows production and says so:
- a key repeated in one object is checked by its first value (`{"event_type": "x",
  "event_type": 8}` is a duplicate and a wrong type);
- `\\ud800`-style escapes without their pair make the line `malformed_json` (not text UTF-8
  can carry);
- `line_too_long` counts the line's bytes with a trailing `\\r`, as the file holds them;
- reasons are in the order production stores them: the line's shape object by object
  (missing fields in contract order, unexpected keys in line order, duplicated keys in order of
  first appearance, wrong types in contract order), then the value rules in contract order.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date, datetime

UTF8_BOM = b"\xef\xbb\xbf"
# The shape, written down again: (key, JSON type) per object, in contract order.
TOP_LEVEL = (
    ("event_type", "integer"),
    ("event_time", "string"),
    ("data", "object"),
    ("processing_date", "string"),
)
DATA_LEVEL = (("user_email", "string"), ("phone_number", "string"))
# White space only (what production calls an empty line), after one trailing `\r` is dropped.
BLANK = re.compile(r"[ \t\f\v\r]*")
# ASCII ranges spelled out: `\d` and `[^...]` would let other scripts' digits through.
EVENT_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([01][0-9]|2[0-3]):([0-5][0-9]):([0-5][0-9])"
)
DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}")
PHONE = re.compile(r"[0-9]{6,15}")
SURROGATE = re.compile("[\ud800-\udfff]")
# Fallback tokens for lines nested deeper than Python's recursion limit (RFC 8259 grammar).
WHITESPACE = re.compile(r"[ \t\n\r]*")
STRING_TOKEN = re.compile(r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"')
NUMBER_TOKEN = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
SEPARATOR = "\x1f"


@dataclass(frozen=True)
class Derived:
    """One line's verdict as the contract defines it, in the terms production stores.

    `values` maps each `events` column to the Python value DuckDB returns for it (int,
    datetime, date, str); it and `event_hash` are None for an invalid line.
    """

    line_number: int
    valid: bool
    reasons: tuple[str, ...]
    values: dict[str, object] | None
    event_hash: str | None


@dataclass(frozen=True)
class _Number:
    """A JSON number as written: its literal text, and whether it is an integer literal."""

    text: str
    integer: bool


class _Object(list):
    """A JSON object as its (key, value) pairs, in line order, duplicates kept."""


class _Malformed(ValueError):
    pass


def split_lines(data: bytes) -> list[bytes]:
    """A file's lines by the contract's line rules: split on `\\n`, a BOM at the very start
    ignored, the last line counted without a final `\\n`, an empty file has none."""
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
    if not data:
        return []
    lines = data.split(b"\n")
    return lines[:-1] if data.endswith(b"\n") else lines


def _refuse_constant(name: str) -> object:
    raise _Malformed(f"{name} is not JSON")


def _decode(text: str) -> object:
    try:
        return json.loads(
            text,
            object_pairs_hook=_Object,
            parse_int=lambda literal: _Number(literal, True),
            parse_float=lambda literal: _Number(literal, False),
            parse_constant=_refuse_constant,
        )
    except RecursionError:
        return _decode_iteratively(text)


def _decode_iteratively(text: str) -> object:
    """The same values as `_decode` without recursion, for nesting deeper than Python's stack.

    A stack of open containers; each holds its pending key (objects) while a value is read.
    One function on purpose: a decoder's state machine reads best as one loop over one cursor.
    """
    position = 0
    stack: list[tuple[list, list[str | None]]] = []

    def skip(at: int) -> int:
        return WHITESPACE.match(text, at).end()

    def string_at(at: int) -> tuple[str, int]:
        token = STRING_TOKEN.match(text, at)
        if token is None:
            raise _Malformed("bad string")
        # A lone string literal never recurses: json decodes its escapes.
        return json.loads(token.group()), token.end()

    root: object = None
    done = False
    position = skip(0)
    while True:
        # Read one value at `position` (a scalar, or the opening of a container).
        if position >= len(text):
            raise _Malformed("unexpected end")
        char = text[position]
        value: object
        opened = False
        if char == "{" or char == "[":
            container: list = _Object() if char == "{" else []
            stack.append((container, [None]))
            position = skip(position + 1)
            closing = "}" if char == "{" else "]"
            if position < len(text) and text[position] == closing:
                stack.pop()
                value, position = container, position + 1
            else:
                opened = True
                if char == "{":
                    key, position = string_at(position)
                    position = skip(position)
                    if position >= len(text) or text[position] != ":":
                        raise _Malformed("expected a colon")
                    stack[-1][1][0] = key
                    position = skip(position + 1)
        elif char == '"':
            value, position = string_at(position)
        elif char == "-" or "0" <= char <= "9":
            token = NUMBER_TOKEN.match(text, position)
            if token is None:
                raise _Malformed("bad number")
            integer = token.group(1) is None and token.group(2) is None
            value, position = _Number(token.group(), integer), token.end()
        else:
            for word, meaning in (("true", True), ("false", False), ("null", None)):
                if text.startswith(word, position):
                    value, position = meaning, position + len(word)
                    break
            else:
                raise _Malformed("unexpected character")
        if opened:
            continue
        # Attach the finished value; close every container it completes.
        while True:
            if not stack:
                root, done = value, True
                break
            container, pending = stack[-1]
            if isinstance(container, _Object):
                container.append((pending[0], value))
            else:
                container.append(value)
            position = skip(position)
            closing = "}" if isinstance(container, _Object) else "]"
            if position < len(text) and text[position] == ",":
                position = skip(position + 1)
                if isinstance(container, _Object):
                    key, position = string_at(position)
                    position = skip(position)
                    if position >= len(text) or text[position] != ":":
                        raise _Malformed("expected a colon")
                    pending[0] = key
                    position = skip(position + 1)
                break
            if position < len(text) and text[position] == closing:
                stack.pop()
                value, position = container, position + 1
                continue
            raise _Malformed("expected a comma or a closing bracket")
        if done:
            break
    if skip(position) != len(text):
        raise _Malformed("trailing content")
    return root


def _has_lone_surrogate(value: object) -> bool:
    """A `\\ud800`-style escape without its pair: not text that UTF-8 can carry."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if SURROGATE.search(item):
                return True
        elif isinstance(item, _Object):
            for key, child in item:
                pending.append(key)
                pending.append(child)
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _well_typed(value: object, json_type: str) -> bool:
    if json_type == "integer":
        return isinstance(value, _Number) and value.integer
    if json_type == "string":
        return isinstance(value, str)
    return isinstance(value, _Object)


def _shape(
    members: _Object, fields: tuple[tuple[str, str], ...], prefix: str
) -> tuple[list[str], dict[str, object]]:
    """One object's shape reasons, and its well-typed fields' first values by name."""
    keys = [key for key, _ in members]
    names = [name for name, _ in fields]
    first: dict[str, object] = {}
    counts: dict[str, int] = {}
    for key, value in members:
        first.setdefault(key, value)
        counts[key] = counts.get(key, 0) + 1
    reasons = [f"missing_field:{prefix}{name}" for name in names if name not in first]
    reasons += [f"unexpected_field:{prefix}{key}" for key in keys if key not in names]
    reasons += [f"duplicate_field:{prefix}{key}" for key, count in counts.items() if count > 1]
    typed: dict[str, object] = {}
    for name, json_type in fields:
        if name not in first:
            continue
        if _well_typed(first[name], json_type):
            typed[name] = first[name]
        else:
            reasons.append(f"wrong_type:{prefix}{name}")
    return reasons, typed


def _real_date(year: str, month: str, day: str) -> date | None:
    # Years 1 to 9999: there is no year 0 in the calendar the contract's dates are written in.
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        return None


def _event_time(text: str) -> datetime | None:
    shape = EVENT_TIME.fullmatch(text)
    if shape is None:
        return None
    day = _real_date(*shape.group(1, 2, 3))
    if day is None:
        return None
    hour, minute, second = (int(part) for part in shape.group(4, 5, 6))
    return datetime(day.year, day.month, day.day, hour, minute, second)


def _processing_date(text: str) -> date | None:
    shape = DATE.fullmatch(text)
    return None if shape is None else _real_date(*shape.group(1, 2, 3))


def _event_type_text(number: _Number) -> str:
    # `-0` is the integer 0; every other JSON integer literal is already canonical.
    return "0" if number.text == "-0" else number.text


def rederive(
    line_number: int, raw: bytes, allowed_event_types: frozenset[int], max_line_bytes: int
) -> Derived:
    """Verdict, reasons, stored values and `event_hash` of one line, from the contract alone.

    `raw` is the line's bytes without its `\\n` (and, for a file's first line, without the
    file's BOM: `split_lines` gives both).
    """

    def rejected(*reasons: str) -> Derived:
        return Derived(line_number, False, tuple(reasons), None, None)

    if len(raw) > max_line_bytes:
        return rejected("line_too_long")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return rejected("malformed_json")
    text = text.removesuffix("\r")
    if BLANK.fullmatch(text):
        return rejected("empty_line")
    try:
        document = _decode(text)
    except ValueError:
        return rejected("malformed_json")
    if _has_lone_surrogate(document):
        return rejected("malformed_json")
    if not isinstance(document, _Object):
        return rejected("not_an_object")

    reasons, top = _shape(document, TOP_LEVEL, "")
    data: dict[str, object] = {}
    if "data" in top:
        data_reasons, data = _shape(top["data"], DATA_LEVEL, "data.")
        reasons += data_reasons

    event_type = event_time = processing_date = None
    event_type_text = ""
    if "event_type" in top:
        event_type_text = _event_type_text(top["event_type"])
        allowed = {str(value) for value in allowed_event_types}
        if event_type_text in allowed:
            event_type = int(event_type_text)
        else:
            reasons.append("out_of_range:event_type")
    if "event_time" in top:
        event_time = _event_time(top["event_time"])
        if event_time is None:
            reasons.append("invalid_format:event_time")
    if "processing_date" in top:
        processing_date = _processing_date(top["processing_date"])
        if processing_date is None:
            reasons.append("invalid_format:processing_date")
    for name, pattern in (("user_email", EMAIL), ("phone_number", PHONE)):
        if name in data and not pattern.fullmatch(data[name]):
            reasons.append(f"invalid_format:data.{name}")
    if reasons:
        return rejected(*reasons)

    values: dict[str, object] = {
        "event_type": event_type,
        "event_time": event_time,
        "processing_date": processing_date,
        "user_email": data["user_email"],
        "phone_number": data["phone_number"],
    }
    canonical = SEPARATOR.join(
        [
            event_type_text,
            top["event_time"],
            top["processing_date"],
            data["user_email"],
            data["phone_number"],
        ]
    )
    event_hash = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return Derived(line_number, True, (), values, event_hash)
