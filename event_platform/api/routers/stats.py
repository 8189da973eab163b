"""Daily event counts, precomputed per processing date and event type at publication."""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query

from event_platform.api.auth import Caller
from event_platform.api.dependencies import Reader
from event_platform.api.errors import ERRORS
from event_platform.api.models import INT32_MAX, DailyStats

router = APIRouter(tags=["stats"])


@router.get("/stats/daily", response_model=DailyStats, responses=ERRORS)
def daily_stats(
    caller: Caller,
    reader: Reader,
    date_from: date | None = None,
    date_to: Annotated[date | None, Query(description="inclusive")] = None,
    event_type: Annotated[int | None, Query(ge=0, le=INT32_MAX)] = None,
) -> dict[str, Any]:
    """Published events per processing date and event type (precomputed at publication)."""
    where, params = [], []
    if date_from is not None:
        where.append("day >= ?")
        params.append(date_from)
    if date_to is not None:
        where.append("day <= ?")
        params.append(date_to)
    if event_type is not None:
        where.append("event_type = ?")
        params.append(event_type)
    sql = (
        f"SELECT day, event_type, events FROM daily_stats WHERE {' AND '.join(where) or 'TRUE'}"
        " ORDER BY day, event_type"
    )
    with reader.cursor() as cur:
        rows = cur.execute(sql, params).fetchall()
    return {"days": [{"day": d, "event_type": t, "events": n} for d, t, n in rows]}
