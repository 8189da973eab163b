"""Response models: they document the JSON shapes in the OpenAPI schema.

A row the API serves is a table's row, so its model is built from the table's spec
(`event_platform.store.tables`): a served column added or retyped there reaches the OpenAPI
document without a second declaration. Routes on hot paths build their JSON directly and only
declare these as `response_model`; the contract tests check that the bodies match them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field, create_model

from event_platform.store.tables import EVENTS, RECONCILIATION_REPORTS, TableSpec

# Bounds of the stored integer columns, so a filter outside them is a 422, not a DuckDB error.
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def response_model(
    spec: TableSpec,
    name: str,
    *,
    columns: Sequence[str] | None = None,
    nullable: Collection[str] = (),
    extra: dict[str, Any] | None = None,
) -> type[BaseModel]:
    """A pydantic model with one required field per served column, typed from the spec.

    `columns` picks and orders the columns (the spec's served columns by default); a column is
    `T | None` when the spec says it may be null or it is named in `nullable`. `extra` adds fields
    as `create_model` takes them (`name=(type, default)`), after the columns.
    """
    types = spec.python_types()
    unknown = set(nullable) - set(types)
    if unknown:
        raise KeyError(f"{spec.name} has no columns {sorted(unknown)}")
    fields: dict[str, Any] = {}
    for column in columns if columns is not None else spec.served_columns:
        python_type, may_be_null = types[column]
        annotation = python_type | None if may_be_null or column in nullable else python_type
        fields[column] = (annotation, ...)
    fields.update(extra or {})
    return create_model(name, **fields)


class ErrorBody(BaseModel):
    error: str
    detail: Any = None


Event = response_model(EVENTS, "Event")


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


# Reports are read from snapshots published by older releases too, which may lack a column.
Reconciliation = response_model(
    RECONCILIATION_REPORTS,
    "Reconciliation",
    nullable=[name for name in RECONCILIATION_REPORTS.served_columns if name != "source_file"],
    extra={"served": (bool, ...)},
)


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
