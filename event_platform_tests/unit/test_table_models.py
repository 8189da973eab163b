"""The API's response models come from the table specs: a served column reaches the API alone."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from pydantic import BaseModel

from event_platform.api.models import Event, Reconciliation, response_model
from event_platform.store.tables import EVENTS, Column


def _fields(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    return {
        name: (field.get("type") or [t.get("type") for t in field["anyOf"]], name in required)
        for name, field in schema["properties"].items()
    }


def test_the_event_model_keeps_the_served_shape() -> None:
    # The published contract of /events items; the run that stored a row is not served.
    assert _fields(Event) == {
        "event_hash": ("string", True),
        "event_type": ("integer", True),
        "event_time": ("string", True),
        "processing_date": (["string", "null"], True),
        "user_email": (["string", "null"], True),
        "phone_number": (["string", "null"], True),
        "source_file": ("string", True),
        "line_number": ("integer", True),
        "ingested_at": (["string", "null"], True),
    }


def test_reports_are_served_nullable_but_for_their_file_and_say_whether_it_is_served() -> None:
    fields = _fields(Reconciliation)
    assert fields["source_file"] == ("string", True)
    assert fields["passed"] == (["boolean", "null"], True)
    assert fields["served"] == ("boolean", True)
    assert "ingest_run_id" not in fields


def test_a_column_added_to_a_spec_reaches_the_model_unless_it_is_not_served() -> None:
    spec = replace(
        EVENTS,
        columns=(
            *EVENTS.columns,
            Column("country", "VARCHAR", nullable=True),
            Column("internal_note", "VARCHAR", served=False),
        ),
    )
    fields = _fields(response_model(spec, "Event"))
    assert fields["country"] == (["string", "null"], True)
    assert "internal_note" not in fields


def test_a_column_the_spec_lacks_is_refused() -> None:
    with pytest.raises(KeyError, match="no_such_column"):
        response_model(EVENTS, "Event", nullable=["no_such_column"])
    with pytest.raises(KeyError):
        response_model(EVENTS, "Event", columns=["no_such_column"])
