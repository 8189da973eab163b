"""Keyset pages over `events` read through widening `event_time` windows.

Why windows: `ORDER BY event_time, event_hash LIMIT n` over a 10M-row snapshot makes DuckDB
consider every row after the cursor (a top-N over millions of candidates, slowest on the
first page). The snapshot is stored sorted by that key, so a bounded predicate
`event_time < lo + width` lets its zone maps skip all but one or two row groups. The
first window is sized from the snapshot's density to hold a few dozen pages; when filters leave
it short, the next window starts where the last ended and is several times wider, so a selective
filter still needs only a handful of queries and the last one is unbounded. Windows are
contiguous and ordered, so concatenating their results is exactly the unwindowed order.

Windows pay off only when the filters leave rows spread along `event_time`. A filter on a column
whose zone maps already prune (`processing_date`, which is normally the date of `event_time`) or
that matches a few scattered rows (`user_email`) is better served by one unbounded query; the
caller says so with `windowed=False`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb

from event_platform.store.tables import EVENTS

# The event row as the API serves it: the `events` spec without the run that stored it.
EVENT_FIELDS = EVENTS.served_columns


def _iso(column: str) -> str:
    """SQL giving exactly Python's `isoformat()` of a TIMESTAMP column (microseconds if any)."""
    return (
        f"CASE WHEN epoch_us({column}) % 1000000 = 0 "
        f"THEN strftime({column}, '%Y-%m-%dT%H:%M:%S') "
        f"ELSE strftime({column}, '%Y-%m-%dT%H:%M:%S.%f') END"
    )


# Times and dates leave DuckDB as ISO strings, ready for JSON: building Python datetime objects
# per row would cost a sizeable share of a page's whole query.
EVENT_COLUMNS = ", ".join(
    f"{_iso(name)} AS {name}" if name in ("event_time", "ingested_at")
    else f"CAST({name} AS VARCHAR) AS {name}" if name == "processing_date"
    else name
    for name in EVENT_FIELDS
)  # fmt: skip
PAGES_PER_FIRST_WINDOW = 32  # fewer often needs a second query under a moderately selective filter
WIDENING = 8
MIN_WINDOW = timedelta(seconds=1)


@dataclass(frozen=True)
class TimeExtent:
    """First and last `event_time` of a snapshot and its row count, read once per snapshot."""

    first: datetime | None
    last: datetime | None
    rows: int

    @classmethod
    def read(cls, cur: duckdb.DuckDBPyConnection) -> TimeExtent:
        first, last, rows = cur.execute(
            "SELECT min(event_time), max(event_time), count(*) FROM events"
        ).fetchone()
        return cls(first, last, rows)

    def window_for(self, limit: int) -> timedelta:
        """A window expected to hold `PAGES_PER_FIRST_WINDOW` unfiltered pages."""
        if self.first is None or self.last is None or self.rows == 0:
            return MIN_WINDOW
        per_row = (self.last - self.first) / self.rows
        return max(MIN_WINDOW, per_row * (limit + 1) * PAGES_PER_FIRST_WINDOW)


@dataclass(frozen=True)
class After:
    """The keyset position a page resumes after (exclusive)."""

    event_time: datetime
    event_hash: str


def fetch_page(
    cur: duckdb.DuckDBPyConnection,
    extent: TimeExtent,
    *,
    where: list[str],
    params: list[Any],
    time_from: datetime | None,
    time_to: datetime | None,
    after: After | None,
    limit: int,
    windowed: bool = True,
) -> list[tuple]:
    """Up to `limit + 1` rows in (event_time, event_hash) order; the extra row means "more".

    Rows are `EVENT_FIELDS` tuples with times and dates as ISO strings.

    `where`/`params` carry the caller's other filters (parametrised fragments only);
    `time_from` is inclusive, `time_to` exclusive, and both may be None.
    """
    wanted = limit + 1
    if extent.first is None or extent.last is None:
        return []
    low = max(time_from or extent.first, extent.first)
    if after is not None and after.event_time > low:
        low = after.event_time
    rows: list[tuple] = []
    width = extent.window_for(limit)
    first_window = True
    while len(rows) < wanted:
        high = _window_end(low, width) if windowed else None
        final = high is None or high > extent.last or (time_to is not None and high >= time_to)
        clauses = [*where, "event_time >= ?"]
        values = [*params, low]
        if first_window and after is not None and after.event_time >= low:
            clauses.append("(event_time > ? OR event_hash > ?)")
            values.extend([after.event_time, after.event_hash])
        if time_to is not None:
            clauses.append("event_time < ?")
            values.append(time_to)
        if not final:
            clauses.append("event_time < ?")
            values.append(high)
        rows.extend(
            cur.execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE {' AND '.join(clauses)} "
                "ORDER BY event_time, event_hash LIMIT ?",
                [*values, wanted - len(rows)],
            ).fetchall()
        )
        if final:
            break
        low, width, first_window = high, width * WIDENING, False
    return rows


def _window_end(low: datetime, width: timedelta) -> datetime | None:
    """`low + width`, or None when that passes the largest representable time."""
    try:
        return low + width
    except OverflowError:
        return None
