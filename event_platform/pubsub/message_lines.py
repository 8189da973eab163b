"""One Pub/Sub message = one landing-file line, whatever the message holds.

The landing reader splits files on LF (0x0A) only, so a message must not contain LF or it would
count as several events. The rule, applied per message:

* no LF in the data: the line is the data, byte for byte (invalid UTF-8 and invalid JSON
  included: such a line lands in `rejected_events`, it is never dropped here);
* LF present and the data is strictly valid JSON (UTF-8, Python's `json` with `parse_constant`
  rejecting NaN/Infinity, control characters in strings rejected): every run of JSON whitespace
  that contains an LF is removed. Strict JSON cannot hold a raw LF inside a string, so every such
  run lies between tokens and no two value tokens are ever separated by whitespace alone: the
  result is the same document on one line with every token's bytes unchanged. We do not
  `json.dumps(json.loads(...))` because that would rewrite numbers (`1.10` -> `1.1`, precision
  past float64) and silently drop duplicate keys, changing what downstream validation sees;
* LF present and the data is not strictly valid JSON: each LF becomes the byte 0x1F (unit
  separator). 0x1F is invalid everywhere in JSON (outside strings and, raw, inside strings), so
  the substitution cannot turn invalid data into valid data.

Two details of the landing reader are honoured too: it drops a UTF-8 byte-order mark at the very
start of a file, so if the first line starts with one it is written twice; and it drops one
trailing CR per line, which is JSON whitespace for a valid document and irrelevant for a
rejected one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

LF = b"\n"
UNIT_SEPARATOR = b"\x1f"
UTF8_BOM = b"\xef\xbb\xbf"
_WHITESPACE_WITH_LF = re.compile(rb"[ \t\r]*\n[ \t\r\n]*")


def _reject_constant(name: str) -> float:
    raise ValueError(f"non-standard JSON constant {name}")


def _strict_json(data: bytes) -> object | None:
    """`(value,)` when `data` is strictly valid JSON, else None; the 1-tuple keeps a JSON
    `null` document apart from "invalid"."""
    try:
        text = data.decode("utf-8")
        return (json.loads(text, parse_constant=_reject_constant),)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def to_line(data: bytes) -> bytes:
    """The single line (without its LF) that stands for one message's data."""
    if LF not in data:
        return data
    parsed = _strict_json(data)
    if parsed is not None:
        compact = _WHITESPACE_WITH_LF.sub(b"", data)
        # Belt and braces: the removal must not change the document.
        if _strict_json(compact) == parsed:
            return compact
    return data.replace(LF, UNIT_SEPARATOR)


def encode_lines(datas: Iterable[bytes]) -> bytes:
    """The body of one micro-batch file: each message on its own LF-terminated line."""
    lines = [to_line(data) for data in datas]
    if lines and lines[0].startswith(UTF8_BOM):
        lines[0] = UTF8_BOM + lines[0]
    return b"".join(line + LF for line in lines)


def decode_lines(body: bytes) -> list[bytes]:
    """The lines the landing reader will see in a file body (used by tests and checks)."""
    if body.startswith(UTF8_BOM):
        body = body[len(UTF8_BOM) :]
    if not body:
        return []
    lines = body.split(LF)
    if body.endswith(LF):
        lines.pop()
    return lines
