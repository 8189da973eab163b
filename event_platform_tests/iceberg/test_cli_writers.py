"""On Iceberg, `event-platform ingest` runs write at once instead of taking the DuckDB
writer's turn; `EVENT_PLATFORM_ICEBERG_WRITERS` bounds them when set."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest

from event_platform.runs.writer_turn import slot_turn
from event_platform.settings import Settings
from event_platform.store.iceberg.warehouse import IcebergWarehouse
from event_platform_tests.conftest import event_line, write_lines
from event_platform_tests.e2e.test_run_recovery import ROOT, SCRIPT, environment
from event_platform_tests.iceberg.test_kill_and_maintenance import (
    _blocked_commit,
    _catalog_row_locked,
    _poll,
)


def test_the_writers_setting_defaults_to_no_limit(tmp_path: Path) -> None:
    base = {"EVENT_PLATFORM_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(base).iceberg_writers == 0
    assert Settings.from_env({**base, "EVENT_PLATFORM_ICEBERG_WRITERS": "3"}).iceberg_writers == 3


def test_slots_admit_that_many_holders_and_the_next_waits_saying_so(tmp_path: Path) -> None:
    told: list[str] = []
    entered = threading.Event()

    def third() -> None:
        with slot_turn(tmp_path / "w", 2, tell=told.append, what="an Iceberg writer"):
            entered.set()

    with (
        slot_turn(tmp_path / "w", 2, tell=told.append, what="an Iceberg writer") as first,
        slot_turn(tmp_path / "w", 2, tell=told.append, what="an Iceberg writer"),
    ):
        assert first < 1
        waiting = threading.Thread(target=third)
        waiting.start()
        assert not entered.wait(1.5)
    assert entered.wait(5)
    waiting.join(5)
    assert told == ["waiting for an Iceberg writer, held by 2 other processes"]
    with slot_turn(tmp_path / "w", 0, tell=told.append, what="x") as waited:
        assert waited == 0.0


def _other_dates(index: int) -> str:
    return event_line(index, processing_date="2019-02-04", event_time="2019-02-04 05:07:26")


@pytest.mark.slow
def test_two_cli_ingests_on_iceberg_write_at_once(tmp_path: Path, catalog_uri: str) -> None:
    """Both CLIs reach their commit while the first is still inside its own: the catalog row
    of `events` is held locked, so each worker's commit UPDATE waits there, and two of them
    waiting at once means neither waited for the other's run. The files hold different dates,
    so the date locks do not order them either."""
    env = environment(
        tmp_path,
        EVENT_PLATFORM_WAREHOUSE="iceberg",
        EVENT_PLATFORM_ICEBERG_CATALOG_URI=catalog_uri,
    )
    data = tmp_path / "data"
    IcebergWarehouse(catalog_uri, str(data / "iceberg")).catalog  # the tables, to lock a row
    a = write_lines(tmp_path / "a.jsonl", [event_line(i) for i in range(200)])
    b = write_lines(tmp_path / "b.jsonl", [_other_dates(i) for i in range(300)])
    started = []
    with _catalog_row_locked(catalog_uri, "events"):
        for path in (a, b):
            started.append(
                subprocess.Popen(
                    [SCRIPT, "ingest", "--json", str(path)],
                    env=env,
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    stderr=(tmp_path / f"{path.stem}.log").open("wb"),
                    text=True,
                )
            )
        try:
            _blocked_commit(catalog_uri)
            query = (
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query ILIKE 'UPDATE iceberg_tables%%'"
            )
            _poll(catalog_uri, query, (), lambda row: row[0] == 2, 120.0)
        except AssertionError:
            for process in started:
                process.kill()
            raise
    summaries = []
    for process, path in zip(started, (a, b), strict=True):
        out, _ = process.communicate(timeout=180)
        log = (tmp_path / f"{path.stem}.log").read_text()
        assert process.returncode == 0, log
        assert "waiting for the warehouse writer" not in log
        assert "waiting for an Iceberg writer" not in log
        summaries.append(json.loads(out.splitlines()[0]))
    assert [(s["valid"], s["reconciliation_passed"], s["ok"]) for s in summaries] == [
        (200, True, True),
        (300, True, True),
    ]
    assert all(s["warehouse"].startswith(f"iceberg {data / 'iceberg'} ") for s in summaries)
    store = IcebergWarehouse(catalog_uri, str(data / "iceberg"))
    assert store.table("events").scan().to_arrow().num_rows == 500
