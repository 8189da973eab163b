"""Response models derived from the warehouse's table specs (`event_platform.store.tables`).

A row the API serves is a table's row, so its model is built from the table's spec: a column
added or retyped there reaches the OpenAPI document without a second declaration to keep in
step. Only what the API shows differently is said here: which columns it serves, which it
declares nullable beyond the spec (a reader of older snapshots may meet nulls), and fields that
no table stores.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from pydantic import BaseModel, create_model

from event_platform.store.tables import TableSpec


def response_model(
    spec: TableSpec,
    name: str,
    *,
    columns: Sequence[str] | None = None,
    nullable: Collection[str] = (),
    extra: dict[str, Any] | None = None,
) -> type[BaseModel]:
    """A pydantic model with one required field per served column, typed from the spec.

    `columns` picks and orders the served columns (all by default); a column is `T | None`
    when the spec says it may be null or it is named in `nullable`. `extra` adds fields as
    `create_model` takes them (`name=(type, default)`), after the columns.
    """
    types = spec.python_types()
    unknown = set(nullable) - set(types)
    if unknown:
        raise KeyError(f"{spec.name} has no columns {sorted(unknown)}")
    fields: dict[str, Any] = {}
    for column in columns if columns is not None else spec.column_names:
        python_type, may_be_null = types[column]
        annotation = python_type | None if may_be_null or column in nullable else python_type
        fields[column] = (annotation, ...)
    fields.update(extra or {})
    return create_model(name, **fields)
