"""One run per file version, whoever starts it: `ingest` while the daemon runs does not store a
file twice, and `ingest` of a version the sensor already ran reports that run."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import dagster as dg

from event_platform.defs.ingestion.assets import LINEAGE
from event_platform.defs.ingestion.checks import PARTITION_CHECKS
from event_platform.defs.ingestion.partitions import event_files
from event_platform.defs.ingestion.sensors import build_landing_sensor
from event_platform.defs.resources import PlatformResource, build_resources
from event_platform.ingest.landing import file_fingerprint
from event_platform.runs.versions import FINGERPRINT_TAG
from event_platform_tests.conftest import ROOT, event_line, write_lines
from event_platform_tests.e2e.test_cli import cli, environment


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster" / "dev.yaml", home / "dagster.yaml")
    return home


def _tick(instance: dg.DagsterInstance, settings) -> dg.SensorResult | dg.SkipReason:
    context = dg.build_sensor_context(
        instance=instance, resources={"platform": PlatformResource.from_settings(settings)}
    )
    return build_landing_sensor()(context)


def test_the_sensor_starts_no_second_run_for_a_file_ingest_landed(tmp_path, settings) -> None:
    home = _home(tmp_path)
    path = write_lines(tmp_path / "a.jsonl", [event_line(i) for i in range(5)])
    env = environment(tmp_path, DAGSTER_HOME=str(home))
    env["EVENT_PLATFORM_DATA_DIR"] = str(settings.data_dir)
    assert cli("ingest", "--no-publish", str(path), env=env).returncode == 0
    assert (settings.landing_dir / "a.jsonl").exists()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = _tick(instance, settings)
        assert isinstance(result, dg.SensorResult) and result.run_requests == []
        assert "already has a run" in result.skip_reason.skip_message
        assert len(instance.get_runs()) == 1


def test_ingest_reports_the_sensors_run_of_the_same_version(tmp_path, settings) -> None:
    home = _home(tmp_path)
    source = write_lines(tmp_path / "b.jsonl", [event_line(i) for i in range(8)])
    landed = settings.landing_dir / "b.jsonl"
    os.link(source, landed)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        [request] = _tick(instance, settings).run_requests
        instance.add_dynamic_partitions(event_files.name, ["b.jsonl"])
        sensor_run = dg.materialize(
            [*LINEAGE, *PARTITION_CHECKS],
            instance=instance,
            partition_key="b.jsonl",
            resources=build_resources(settings),
            tags=request.tags,
        )
        assert sensor_run.success
        assert request.tags[FINGERPRINT_TAG] == file_fingerprint(source)
    env = environment(tmp_path, DAGSTER_HOME=str(home))
    env["EVENT_PLATFORM_DATA_DIR"] = str(settings.data_dir)
    result = cli("ingest", "--json", str(source), env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["run_id"] == sensor_run.run_id and summary["followed_run"] is True
    assert summary["valid"] == 8
    assert "ingested already by run" in result.stderr
    forced = cli("ingest", "--json", "--force", "--no-publish", str(source), env=env)
    assert json.loads(forced.stdout)["run_id"] != sensor_run.run_id
