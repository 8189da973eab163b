"""The opaque pagination cursor: base64url of `{"v": 1, "t": event_time, "h": event_hash}`.

Keyset pagination on (event_time, event_hash) instead of OFFSET: a page costs the same at row
10,000,000 as at row 0 on a snapshot sorted by that key, and pages never skip or repeat rows.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

MAX_CURSOR_CHARS = 512


class BadCursorError(ValueError):
    """The cursor was not produced by this API (or was altered)."""


def encode_cursor(event_time: datetime, event_hash: str) -> str:
    payload = json.dumps(
        {"v": 1, "t": event_time.isoformat(), "h": event_hash}, separators=(",", ":")
    )
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Strictly decode a cursor; anything unexpected is a BadCursorError (HTTP 400)."""
    if len(cursor) > MAX_CURSOR_CHARS or not cursor.isascii():
        raise BadCursorError("cursor is not one this API issued")
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        payload = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise BadCursorError("cursor is not valid base64url JSON") from exc
    if (
        not isinstance(payload, dict)
        or set(payload) != {"v", "t", "h"}
        or payload["v"] != 1
        or not isinstance(payload["t"], str)
        or not isinstance(payload["h"], str)
        or not 0 < len(payload["h"]) <= 128
    ):
        raise BadCursorError("cursor has an unexpected shape")
    try:
        event_time = datetime.fromisoformat(payload["t"])
    except ValueError as exc:
        raise BadCursorError("cursor has an invalid time") from exc
    if event_time.tzinfo is not None:
        raise BadCursorError("cursor has an invalid time")
    return event_time, payload["h"]
