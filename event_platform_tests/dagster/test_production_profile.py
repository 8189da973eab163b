"""The production instance profile runs the lineage with Dagster's storage in PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from event_platform.defs.ingestion.assets import LINEAGE
from event_platform.defs.ingestion.checks import PARTITION_CHECKS
from event_platform.defs.ingestion.partitions import event_files
from event_platform.defs.resources import build_resources
from event_platform_tests.conftest import event_line, write_lines

ROOT = Path(__file__).resolve().parents[2]
psycopg2 = pytest.importorskip("psycopg2")


def test_runs_and_partitions_are_stored_in_postgres(
    settings, tmp_path: Path, postgres_database: str
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster" / "production.yaml", home / "dagster.yaml")
    write_lines(settings.landing_dir / "pg.jsonl", [event_line(i) for i in range(20)])
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.run_coordinator.dequeue_interval_seconds == 1
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 8
        instance.add_dynamic_partitions(event_files.name, ["pg.jsonl"])
        result = dg.materialize(
            [*LINEAGE, *PARTITION_CHECKS],
            instance=instance,
            partition_key="pg.jsonl",
            resources=build_resources(settings),
        )
        assert result.success
    connection = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=postgres_database)
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT run_id, status FROM runs")
        assert cursor.fetchall() == [(result.run_id, "SUCCESS")]
        cursor.execute("SELECT partition FROM dynamic_partitions")
        assert cursor.fetchall() == [("pg.jsonl",)]
    connection.close()
