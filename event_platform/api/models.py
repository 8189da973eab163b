"""Response models: they document the JSON shapes in the OpenAPI schema.

Routes on hot paths build their JSON directly and only declare these as `response_model`; the
contract tests check that the bodies match them.
"""

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

# Bounds of the stored integer columns, so a filter outside them is a 422, not a DuckDB error.
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


class ErrorBody(BaseModel):
    error: str
    detail: Any = None


class Event(BaseModel):
    event_hash: str
    event_type: int
    event_time: datetime
    processing_date: date | None
    user_email: str | None
    phone_number: str | None
    source_file: str
    line_number: int
    ingested_at: datetime | None


class EventPage(BaseModel):
    items: list[Event]
    next_cursor: str | None
    limit: int


class DailyStat(BaseModel):
    day: date | None
    event_type: int | None
    events: int


class DailyStats(BaseModel):
    days: list[DailyStat]


class Reconciliation(BaseModel):
    source_file: str
    file_sha256: str | None
    lines_total: int | None
    valid: int | None
    rejected: int | None
    duplicates: int | None
    stored_rows: int | None
    missing_rows: int | None
    unexpected_rows: int | None
    mismatched_rows: int | None
    passed: bool | None
    checked_at: datetime | None
    run_id: str | None
    served: bool


class ReconciliationList(BaseModel):
    files: list[Reconciliation]


class ReasonCount(BaseModel):
    reason: str
    lines: int


class RejectedLine(BaseModel):
    line_number: int
    reasons: list[str]
    rejected_at: datetime | None
    raw_line: str | None = Field(
        description="The line's bytes as text when they are UTF-8, else null; pii scope only"
    )
    raw_line_base64: str | None = Field(
        description="The line's exact bytes (up to its newline), base64; pii scope only"
    )
    raw_line_redacted: bool


class Rejections(BaseModel):
    source_file: str | None
    reasons: list[ReasonCount]
    lines: list[RejectedLine] | None = None
    next_after_line: int | None = None


class Status(BaseModel):
    status: str
    snapshot: str | None = None
    published_at: datetime | None = None
    detail: str | None = None
