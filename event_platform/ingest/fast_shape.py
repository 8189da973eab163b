"""The parser's fast path, compiled: the contract's one-producer shape matched in C.

The fast path (see `parsing`) accepts the one shape a healthy producer writes: keys in contract
order, strings without escapes, canonical integers, JSON white space between tokens. A regex
with one capture group per field says the same thing, but its capture engine is most of the
parse's CPU. `_shape.c` walks the same tokens and hands each field back as Arrow string views
into the lines' own buffer, so no value is copied or re-checked.

The module is built when the package is installed with a C compiler at hand; without it
`available()` is False and the parser keeps its regex. `EVENT_PLATFORM_PARSER=regex` forces the
regex, for comparison; both must give identical frames, which the tests check.
"""

from __future__ import annotations

import functools
import logging
import os

import polars as pl
import pyarrow as pa

from event_platform.contract import StreamContract

try:
    from event_platform.ingest import _shape
except ImportError:  # built without a C compiler
    _shape = None

PARSER_ENV = "EVENT_PLATFORM_PARSER"
# The most a program can address: field numbers and literal lengths are single bytes.
MAX_TOKEN = 255


def available() -> bool:
    """True when the compiled fast path is installed and not switched off by the environment."""
    if os.environ.get(PARSER_ENV, "native") == "regex":
        return False
    if _shape is None:
        _say_not_built()
    return _shape is not None


@functools.cache
def _say_not_built() -> None:
    logging.getLogger(__name__).warning(
        "the parser's compiled fast path is not built (no C compiler at install); "
        "parsing with the regex instead, which gives the same results at more CPU"
    )


class ShapeLocator:
    """One contract's shape as a token program for `_shape.locate`."""

    def __init__(self, contract: StreamContract) -> None:
        if _shape is None:
            raise RuntimeError("the parser's compiled fast path is not built in this install")
        self.outputs = [f.name for f in contract.scalar_fields]
        self._numbers = {name: number for number, name in enumerate(self.outputs)}
        self.program = self._object(contract, "")

    def _literal(self, text: str) -> bytes:
        encoded = text.encode()
        if len(encoded) > MAX_TOKEN:
            raise ValueError(f"a key of {len(encoded)} bytes is longer than the fast path takes")
        return b"L" + bytes([len(encoded)]) + encoded

    def _object(self, contract: StreamContract, parent: str) -> bytes:
        members = []
        for child in contract.children(parent):
            key = self._literal(f'"{child.name}"') + self._literal(":")
            if child.json_type == "object":
                value = self._object(contract, child.path)
            else:
                op = {"string": b"S", "integer": b"I"}[child.json_type]
                value = op + bytes([self._numbers[child.name]])
            members.append(key + value)
        return self._literal("{") + self._literal(",").join(members) + self._literal("}")

    def locate(self, text: pa.LargeStringArray) -> tuple[int, pl.DataFrame]:
        """How many lines match, and one column per field: NULL on every line that does not."""
        _validity, offsets, data = text.buffers()
        matched, validity, views = _shape.locate(
            self.program, len(self.outputs), offsets, data, text.offset, len(text)
        )
        nulls = len(text) - matched
        bitmap = pa.py_buffer(validity) if nulls else None
        columns = [
            pa.Array.from_buffers(
                pa.string_view(), len(text), [bitmap, pa.py_buffer(view), data], null_count=nulls
            )
            for view in views
        ]
        return matched, pl.from_arrow(pa.table(columns, names=self.outputs))
