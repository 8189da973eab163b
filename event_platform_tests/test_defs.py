"""The code location loads whole: a broken import or dangling key fails here first."""

import shutil
from pathlib import Path

import dagster as dg
import pytest

from event_platform.config import DEFAULT_SENSOR_INTERVAL_SECONDS, ConfigError, Settings
from event_platform.definitions import build_definitions

ROOT = Path(__file__).resolve().parents[1]


def test_definitions_load_with_the_lineage(settings) -> None:
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {
        "raw_event_file",
        "validated_events",
        "rejected_events",
        "reconciliation_report",
    } <= keys
    parents = {
        k.to_user_string() for k in graph.get(dg.AssetKey("reconciliation_report")).parent_keys
    }
    assert parents == {"validated_events", "rejected_events"}
    checks = {key.name for key in graph.asset_check_keys}
    assert {"reconciliation_exact", "rejection_rate", "unique_event_hash"} <= checks
    assert (
        defs.resolve_sensor_def("landing_sensor").default_status == dg.DefaultSensorStatus.RUNNING
    )
    assert defs.resolve_job_def("ingest_event_file") is not None


def test_the_sensor_interval_comes_from_the_environment(settings) -> None:
    def interval(defs: dg.Definitions) -> int | None:
        return defs.resolve_sensor_def("landing_sensor").minimum_interval_seconds

    assert interval(build_definitions(settings)) == DEFAULT_SENSOR_INTERVAL_SECONDS
    slower = Settings.from_env({"EVENT_PLATFORM_SENSOR_INTERVAL_SECONDS": "30"})
    assert interval(build_definitions(slower)) == 30
    with pytest.raises(ConfigError, match="EVENT_PLATFORM_SENSOR_INTERVAL_SECONDS='0'"):
        Settings.from_env({"EVENT_PLATFORM_SENSOR_INTERVAL_SECONDS": "0"})


def test_the_dev_profile_polls_the_run_queue_every_second(tmp_path: Path) -> None:
    """The queue's 5 s default poll delayed every run; its limits stay under `concurrency`.

    The production profile is checked the same way against PostgreSQL in
    `test_production_profile.py`.
    """
    shutil.copy(ROOT / "deploy" / "dagster" / "dev.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.run_coordinator.dequeue_interval_seconds == 1
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4
