"""Pub/Sub to DuckDB through the core ingest: a crash before the ack duplicates landing lines,
and the store still holds each event exactly once (the rest are `duplicate_event` rejections)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from event_platform.ingest import ingestion, landing
from event_platform.pubsub.consumer import drain, make_subscriber
from event_platform.settings import PubSubSettings
from event_platform.store import connection
from event_platform_tests.conftest import event_line
from event_platform_tests.pubsub_emulator import (
    crash_between_write_and_ack,
    landing_lines,
    publish,
)

# The real Pub/Sub emulator.
pytestmark = pytest.mark.slow


def test_redelivered_events_are_stored_once(
    pubsub: PubSubSettings, emulator: str, tmp_path: Path
) -> None:
    published = [event_line(i).encode() for i in range(100)] + [b"not json\nat all"]
    publish(pubsub, published)
    crash_between_write_and_ack(emulator, tmp_path / "consume.log")
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and len(landing_lines(pubsub)) < 2 * len(published):
        drain(make_subscriber(), pubsub, max_seconds=5)
    lines = landing_lines(pubsub)
    assert len(lines) == 2 * len(published), "the crashed batch should be redelivered whole"

    with connection.connect(tmp_path / "warehouse.duckdb") as con:
        for landed in landing.landed_files(pubsub.landing_dir):
            ingestion.ingest_file(pubsub.landing_dir / landed.name, con, run_id="test")
        stored = con.execute("SELECT count(*), count(DISTINCT event_hash) FROM events").fetchone()
        duplicates = con.execute(
            "SELECT count(*) FROM rejected_events WHERE list_contains(reasons, 'duplicate_event')"
        ).fetchone()[0]
    assert stored == (100, 100)
    assert duplicates == 100
