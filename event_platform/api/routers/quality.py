"""Data quality: each file's latest reconciliation, and rejections by reason and by line.

Raw rejected lines carry personal data, so only keys with the `pii` scope see them. Without it,
reasons are shown by `contract.reasons.disclosed_reason`: a reason's detail may quote the
sender's keys.
"""

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Query

from event_platform.api.auth import Caller
from event_platform.api.dependencies import Reader
from event_platform.api.errors import ERRORS, ApiError
from event_platform.api.models import INT64_MAX, ReconciliationList, Rejections
from event_platform.contract.reasons import disclosed_reasons

router = APIRouter(tags=["quality"])


def _raw_line(raw: bytes | None) -> dict[str, str | None]:
    """A rejected line's exact bytes, unambiguously: base64 always, text only when it is UTF-8."""
    if raw is None:
        return {"raw_line": None, "raw_line_base64": None}
    try:
        text: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return {"raw_line": text, "raw_line_base64": base64.b64encode(raw).decode("ascii")}


@router.get("/reconciliation", response_model=ReconciliationList, responses=ERRORS)
def reconciliation(caller: Caller, reader: Reader) -> dict[str, Any]:
    """The latest reconciliation report of every file; `served` says if its events are."""
    with reader.cursor() as cur:
        result = cur.execute(
            """SELECT r.*, p.source_file IS NOT NULL AS served
               FROM reconciliation_reports r
               LEFT JOIN published_files p USING (source_file)
               QUALIFY row_number() OVER (
                   PARTITION BY r.source_file ORDER BY r.checked_at DESC) = 1
               ORDER BY r.source_file"""
        )
        names = [column[0] for column in result.description]
        rows = result.fetchall()
    return {"files": [dict(zip(names, row, strict=True)) for row in rows]}


@router.get("/rejections", response_model=Rejections, responses=ERRORS)
def rejections(
    caller: Caller,
    reader: Reader,
    source_file: Annotated[str | None, Query(min_length=1, max_length=1024)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after_line: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
) -> dict[str, Any]:
    """Rejection counts per reason; with `source_file`, that file's rejected lines too.

    Raw lines carry personal data, so they are returned only to keys with the pii scope.
    Without it, reasons are shown by `contract.reasons.disclosed_reason` (a detail that is
    not one of the contract's field paths is masked) and counted from the matching snapshot
    table.
    """
    # A fixed choice between two table names, never input.
    table = "rejection_reasons" if caller.pii else "rejection_reasons_masked"
    with reader.cursor() as cur:
        if source_file is None:
            reasons = cur.execute(
                f"SELECT reason, sum(lines)::BIGINT FROM {table} GROUP BY reason ORDER BY reason"
            ).fetchall()
            return {
                "source_file": None,
                "reasons": [{"reason": r, "lines": n} for r, n in reasons],
            }
        known = (
            cur.execute(
                "SELECT count(*) FROM reconciliation_reports WHERE source_file = ?",
                [source_file],
            ).fetchone()[0]
            or cur.execute(
                "SELECT count(*) FROM rejected_events WHERE source_file = ?", [source_file]
            ).fetchone()[0]
        )
        if not known:
            raise ApiError(404, "not_found", "unknown source_file")
        reasons = cur.execute(
            f"SELECT reason, lines FROM {table} WHERE source_file = ? ORDER BY reason",
            [source_file],
        ).fetchall()
        lines = cur.execute(
            "SELECT line_number, reasons, rejected_at, raw_line FROM rejected_events "
            "WHERE source_file = ? AND line_number > ? ORDER BY line_number LIMIT ?",
            [source_file, after_line, limit + 1],
        ).fetchall()
    next_after = None
    if len(lines) > limit:
        lines = lines[:limit]
        next_after = lines[-1][0]
    return {
        "source_file": source_file,
        "reasons": [{"reason": r, "lines": n} for r, n in reasons],
        "lines": [
            {
                "line_number": number,
                "reasons": list(why or []) if caller.pii else disclosed_reasons(why or []),
                "rejected_at": at,
                **_raw_line(raw if caller.pii else None),
                "raw_line_redacted": not caller.pii,
            }
            for number, why, at, raw in lines
        ],
        "next_after_line": next_after,
    }
