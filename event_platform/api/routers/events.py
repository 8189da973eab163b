"""Events: keyset pages (`event_platform.api.pages`) and lookup by hash.

Filtering by email needs the `pii` scope: otherwise the filter would tell who is in the data.
"""

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from event_platform.api.auth import Caller
from event_platform.api.cursor import BadCursorError, decode_cursor, encode_cursor
from event_platform.api.dependencies import Reader
from event_platform.api.errors import ERRORS, ApiError
from event_platform.api.models import INT32_MAX, Event, EventPage
from event_platform.api.pages import EVENT_COLUMNS, EVENT_FIELDS, After, TimeExtent, fetch_page
from event_platform.api.privacy import mask_email, mask_phone

router = APIRouter(tags=["events"])


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def _event(row: tuple, pii: bool) -> dict[str, Any]:
    item = dict(zip(EVENT_FIELDS, row, strict=True))
    if not pii:
        item["user_email"] = mask_email(item["user_email"])
        item["phone_number"] = mask_phone(item["phone_number"])
    return item


@router.get("/events", response_model=EventPage, responses=ERRORS)
def list_events(
    caller: Caller,
    reader: Reader,
    event_type: Annotated[int | None, Query(ge=0, le=INT32_MAX)] = None,
    event_time_from: Annotated[
        datetime | None, Query(description="inclusive; naive times are UTC")
    ] = None,
    event_time_to: Annotated[datetime | None, Query(description="exclusive")] = None,
    processing_date: date | None = None,
    user_email: Annotated[
        str | None, Query(min_length=1, max_length=320, description="needs the pii scope")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> JSONResponse:
    """Events in (event_time, event_hash) order, `limit` per page, resumed by `cursor`."""
    where: list[str] = []
    params: list[Any] = []
    if event_type is not None:
        where.append("event_type = ?")
        params.append(event_type)
    start, end = _naive_utc(event_time_from), _naive_utc(event_time_to)
    if start is not None and end is not None and start > end:
        raise ApiError(400, "bad_filter", "event_time_from is after event_time_to")
    if processing_date is not None:
        where.append("processing_date = ?")
        params.append(processing_date)
    if user_email is not None:
        if not caller.pii:
            raise ApiError(403, "forbidden", "filtering by user_email needs the pii scope")
        where.append("user_email = ?")
        params.append(user_email)
    after = None
    if cursor is not None:
        try:
            after = After(*decode_cursor(cursor))
        except BadCursorError as exc:
            raise ApiError(400, "bad_cursor", str(exc)) from None
    with reader.session() as (cur, extent):
        if extent is None:  # the reader could not read it: surface the real error (500)
            extent = TimeExtent.read(cur)
        rows = fetch_page(
            cur,
            extent,
            where=where,
            params=params,
            time_from=start,
            time_to=end,
            after=after,
            limit=limit,
            windowed=processing_date is None and user_email is None,
        )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(datetime.fromisoformat(rows[-1][2]), rows[-1][0])
    # Already JSON-ready (ISO strings from SQL): returned as is, without a second pass of
    # model validation; `EventPage` still documents the shape and the contract tests check it.
    return JSONResponse(
        {
            "items": [_event(row, caller.pii) for row in rows],
            "next_cursor": next_cursor,
            "limit": limit,
        }
    )


@router.get("/events/{event_hash}", response_model=Event, responses=ERRORS)
def get_event(
    caller: Caller, reader: Reader, event_hash: Annotated[str, Path(min_length=1, max_length=128)]
) -> JSONResponse:
    """One event by its hash, if its file is published."""
    with reader.cursor() as cur:
        # Both tables are sorted by what is looked up, so a constant filter lets zone maps
        # skip to one row group in each: the hash's time first, then the event.
        found = cur.execute(
            "SELECT min(event_time) FROM event_times_by_hash WHERE event_hash = ?",
            [event_hash],
        ).fetchone()
        row = None
        if found[0] is not None:
            row = cur.execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE event_time = ? AND event_hash = ?",
                [found[0], event_hash],
            ).fetchone()
    if row is None:
        raise ApiError(404, "not_found", "no published event has this hash")
    return JSONResponse(_event(row, caller.pii))
