"""Keyset pages read through widening time windows equal one plain ORDER BY, whatever the data.

Windows are forced tiny here (the production sizing would cover these small tables in one
query), so pages cross many window boundaries, including boundaries inside runs of equal
`event_time` and cursors that sit on such ties.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from event_platform.api import pages
from event_platform.api.pages import After, TimeExtent, fetch_page
from event_platform.store.schema import create_tables

START = datetime(2019, 1, 1)

rows_strategy = st.lists(
    st.tuples(st.integers(0, 40), st.integers(1, 3)),  # (second offset, event_type): many ties
    max_size=120,
)


def load(con: duckdb.DuckDBPyConnection, rows: list[tuple[int, int]]) -> None:
    con.execute("DELETE FROM events")
    if not rows:
        return
    con.executemany(
        "INSERT INTO events (event_hash, event_type, event_time, processing_date, source_file, "
        "line_number) VALUES (?, ?, ?, ?, 'f.jsonl', ?)",
        [
            (f"{index * 7919 % 1009:04d}-{index}", kind, START + timedelta(seconds=offset),
             (START + timedelta(seconds=offset)).date(), index)
            for index, (offset, kind) in enumerate(rows)
        ],
    )  # fmt: skip


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(":memory:")
    create_tables(connection)
    yield connection
    connection.close()


@pytest.fixture
def tiny_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pages, "MIN_WINDOW", timedelta(microseconds=1))
    monkeypatch.setattr(pages, "PAGES_PER_FIRST_WINDOW", 0.01)


@pytest.mark.usefixtures("tiny_windows")
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=rows_strategy,
    limit=st.integers(1, 7),
    event_type=st.none() | st.integers(1, 3),
    time_from=st.none() | st.integers(-2, 42),
    time_to=st.none() | st.integers(-2, 42),
    windowed=st.booleans(),
)
def test_paging_equals_one_ordered_query(
    con, rows, limit, event_type, time_from, time_to, windowed
):
    load(con, rows)
    where, params = ([], []) if event_type is None else (["event_type = ?"], [event_type])
    start = None if time_from is None else START + timedelta(seconds=time_from)
    end = None if time_to is None else START + timedelta(seconds=time_to)
    bounds = [*where]
    values = [*params]
    if start is not None:
        bounds.append("event_time >= ?")
        values.append(start)
    if end is not None:
        bounds.append("event_time < ?")
        values.append(end)
    expected = con.execute(
        f"SELECT event_hash FROM events WHERE {' AND '.join(bounds) or 'TRUE'} "
        "ORDER BY event_time, event_hash",
        values,
    ).fetchall()
    extent = TimeExtent.read(con)
    seen: list[str] = []
    after = None
    for _ in range(len(rows) + 2):
        page = fetch_page(
            con, extent, where=where, params=params, time_from=start, time_to=end,
            after=after, limit=limit, windowed=windowed,
        )  # fmt: skip
        assert len(page) <= limit + 1
        seen.extend(row[0] for row in page[:limit])
        if len(page) <= limit:
            break
        last = page[limit - 1]
        after = After(datetime.fromisoformat(last[2]), last[0])
    assert seen == [row[0] for row in expected]


def test_first_window_is_sized_from_the_snapshot_density():
    extent = TimeExtent(START, START + timedelta(days=100), 1_000_000)
    # 100 days over 1M rows is 8.64 s a row; 32 pages of 101 rows
    assert extent.window_for(100) == timedelta(seconds=8.64 * 101 * pages.PAGES_PER_FIRST_WINDOW)
    assert TimeExtent(None, None, 0).window_for(100) == pages.MIN_WINDOW
    assert TimeExtent(START, START, 5).window_for(100) == pages.MIN_WINDOW


def test_window_end_past_the_last_representable_time_means_unbounded(con):
    load(con, [(0, 1), (1, 1), (2, 2)])
    extent = TimeExtent.read(con)
    late = After(datetime.max - timedelta(seconds=1), "z")
    assert fetch_page(con, extent, where=[], params=[], time_from=None, time_to=None,
                      after=late, limit=5) == []  # fmt: skip
    assert pages._window_end(datetime.max - timedelta(days=1), timedelta(days=2)) is None


@pytest.mark.parametrize(
    "value",
    [
        datetime(2019, 1, 4, 5, 0, 0),
        datetime(2019, 1, 4, 5, 0, 0, 500000),
        datetime(2019, 1, 4, 5, 0, 0, 7),
        datetime(1969, 12, 31, 23, 59, 59, 999999),
        datetime(1960, 1, 1),
    ],
)
def test_times_leave_sql_exactly_as_python_isoformat(con, value):
    con.execute("DELETE FROM events")
    con.execute(
        "INSERT INTO events (event_hash, event_time, processing_date, ingested_at) "
        "VALUES ('h', ?, ?, ?)",
        [value, value.date(), value],
    )
    (row,) = con.execute(f"SELECT {pages.EVENT_COLUMNS} FROM events").fetchall()
    item = dict(zip(pages.EVENT_FIELDS, row, strict=True))
    assert item["event_time"] == item["ingested_at"] == value.isoformat()
    assert item["processing_date"] == value.date().isoformat()
