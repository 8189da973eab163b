"""STUB of the independent re-derivation (another helper writes the real one, same API).

A second reading of the events contract with Python's `json` and plain rule checks, sharing no
parsing code with the production path (`ingest/`): the sample in `sample.py` compares what it
derives with what the store holds.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date, datetime

from event_platform.contract.events import DATE_SHAPE, EMAIL_SHAPE, EVENT_TIME_SHAPE, PHONE_SHAPE

_BLANK = re.compile(r"[ \t\f\v\r]*")
_FIELDS = {
    "": {"event_type": int, "event_time": str, "data": dict, "processing_date": str},
    "data": {"user_email": str, "phone_number": str},
}


@dataclass(frozen=True)
class Derived:
    line_number: int
    valid: bool
    reasons: tuple[str, ...]
    values: dict[str, object] | None  # stored events column name -> python value
    event_hash: str | None


class _Constant(ValueError):
    pass


class _Object(list):
    """A JSON object as its (key, value) pairs, repeated keys kept; a JSON array stays a list."""


def _reject_constant(name: str) -> object:
    raise _Constant(name)


def _shape(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern.removeprefix("^").removesuffix("$"))


_TIME, _DATE = _shape(EVENT_TIME_SHAPE), _shape(DATE_SHAPE)
_EMAIL, _PHONE = _shape(EMAIL_SHAPE), _shape(PHONE_SHAPE)


def _invalid(line_number: int, *reasons: str) -> Derived:
    return Derived(line_number, False, tuple(reasons), None, None)


def rederive(
    line_number: int, raw: bytes, allowed_event_types: frozenset[int], max_line_bytes: int
) -> Derived:
    if len(raw) > max_line_bytes:
        return _invalid(line_number, "line_too_long")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _invalid(line_number, "malformed_json")
    text = text.removesuffix("\r")
    if _BLANK.fullmatch(text):
        return _invalid(line_number, "empty_line")
    try:
        record = json.loads(text, object_pairs_hook=_Object, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return _invalid(line_number, "malformed_json")
    if not isinstance(record, _Object):
        return _invalid(line_number, "not_an_object")
    reasons: list[str] = []
    found: dict[str, object] = {}
    _level(record, "", reasons, found)
    values: dict[str, object] = {}
    event_type = found.get("event_type")
    if isinstance(event_type, int) and event_type not in allowed_event_types:
        reasons.append("out_of_range:event_type")
    for name, path, pattern in (
        ("event_time", "event_time", _TIME),
        ("processing_date", "processing_date", _DATE),
        ("user_email", "data.user_email", _EMAIL),
        ("phone_number", "data.phone_number", _PHONE),
    ):
        value = found.get(name)
        if not isinstance(value, str):
            continue
        parsed: object = value
        try:
            if not pattern.fullmatch(value):
                raise ValueError(value)
            if name == "event_time":
                parsed = datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
            elif name == "processing_date":
                parsed = date.fromisoformat(value)
        except ValueError:
            reasons.append(f"invalid_format:{path}")
        values[name] = parsed
    if reasons:
        return _invalid(line_number, *reasons)
    values["event_type"] = event_type
    canonical = "\x1f".join(
        str(found[name])
        for name in ("event_type", "event_time", "processing_date", "user_email", "phone_number")
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return Derived(line_number, True, (), values, digest)


def _level(pairs: list, parent: str, reasons: list[str], found: dict[str, object]) -> None:
    expected = _FIELDS[parent]
    prefix = parent + "." if parent else ""
    keys = [key for key, _ in pairs]
    first: dict[str, object] = {}
    for key, value in pairs:
        first.setdefault(key, value)
    reasons.extend(f"missing_field:{prefix}{key}" for key in expected if key not in first)
    reasons.extend(f"unexpected_field:{prefix}{key}" for key in keys if key not in expected)
    reasons.extend(
        f"duplicate_field:{prefix}{key}" for key in dict.fromkeys(keys) if keys.count(key) > 1
    )
    for key, kind in expected.items():
        if key not in first:
            continue
        value = first[key]
        if kind is dict:
            if isinstance(value, _Object):
                _level(value, key, reasons, found)
            else:
                reasons.append(f"wrong_type:{prefix}{key}")
        elif isinstance(value, kind) and not isinstance(value, bool):
            found[key] = value
        else:
            reasons.append(f"wrong_type:{prefix}{key}")
