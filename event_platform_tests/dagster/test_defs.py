"""The code location loads whole: a broken import or dangling key fails here first."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from event_platform.definitions import build_definitions
from event_platform.settings import DEFAULT_SENSOR_INTERVAL_SECONDS, Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]


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
    with pytest.raises(SettingsError, match="EVENT_PLATFORM_SENSOR_INTERVAL_SECONDS='0'"):
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


def test_every_job_runs_its_steps_in_one_process(settings) -> None:
    """Runs launched from the UI took ~10 s for 1,000 lines under the default multiprocess
    executor, against ~1 s for the sensor's in-process job."""
    defs = build_definitions(settings)
    ui_job = defs.resolve_implicit_global_asset_job_def()
    assert ui_job.executor_def is dg.in_process_executor
    assert defs.resolve_job_def("ingest_event_file").executor_def is dg.in_process_executor


def test_publication_runs_by_default_after_reconciliation(settings) -> None:
    """Dagster's own automation sensor is created stopped: the API answered 503 in `make dev`."""
    defs = build_definitions(settings)
    sensor = defs.resolve_sensor_def("publication_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    targeted = sensor.asset_selection.resolve(defs.resolve_asset_graph())
    assert targeted == {dg.AssetKey("published_events")}
    published = defs.resolve_assets_def("published_events")
    assert published.automation_conditions_by_key[dg.AssetKey("published_events")] is not None


def test_both_profiles_monitor_runs_and_hold_the_writer_per_run(tmp_path: Path) -> None:
    """A killed run is found by run monitoring through a launcher that can tell; the writer
    pool is held per run, so waiting runs wait in the queue."""
    from event_platform.runs.launcher import LocalProcessRunLauncher

    for profile in ("dev.yaml", "production.yaml"):
        text = (ROOT / "deploy" / "dagster" / profile).read_text()
        assert "granularity: run" in text
        assert "class: LocalProcessRunLauncher" in text
    shutil.copy(ROOT / "deploy" / "dagster" / "dev.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 5
        assert isinstance(instance.run_launcher, LocalProcessRunLauncher)
        assert instance.get_concurrency_config().pool_config.pool_granularity.value == "run"


def test_dagster_loads_the_module_as_the_workspace_names_it(tmp_path: Path) -> None:
    """As `dagster dev`, the code server and the daemon load it: by module, which Dagster
    refuses when the module holds two `Definitions` at its top level."""
    env = {**os.environ, "EVENT_PLATFORM_DATA_DIR": str(tmp_path), "DAGSTER_HOME": str(tmp_path)}
    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-m", "event_platform.definitions"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
