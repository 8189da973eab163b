"""The API's response models can be derived from the table specs, field for field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from event_platform.api.app import Event, Reconciliation
from event_platform.api.pages import EVENT_FIELDS
from event_platform.api.table_models import response_model
from event_platform.store.tables import EVENTS, RECONCILIATION_REPORTS


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def test_the_event_model_is_the_events_spec() -> None:
    derived = response_model(EVENTS, "Event", columns=EVENT_FIELDS)
    assert _schema(derived) == _schema(Event)


def test_the_reconciliation_model_is_the_reports_spec() -> None:
    served = [
        name for name in RECONCILIATION_REPORTS.published_column_names if name != "ingest_run_id"
    ]
    derived = response_model(
        RECONCILIATION_REPORTS,
        "Reconciliation",
        columns=served,
        nullable=[name for name in served if name != "source_file"],
        extra={"served": (bool, ...)},
    )
    assert _schema(derived) == _schema(Reconciliation)


def test_a_column_the_spec_lacks_is_refused() -> None:
    with pytest.raises(KeyError, match="no_such_column"):
        response_model(EVENTS, "Event", nullable=["no_such_column"])
    with pytest.raises(KeyError):
        response_model(EVENTS, "Event", columns=["no_such_column"])
