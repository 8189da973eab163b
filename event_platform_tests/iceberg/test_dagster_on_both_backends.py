"""The lineage materialised through Dagster on each backend, checks and publication included."""

from __future__ import annotations

import dataclasses

import dagster as dg
import duckdb
import pytest

from event_platform.defs.ingestion.assets import reconciliation_report
from event_platform.defs.ingestion.checks import reconciliation_exact
from event_platform.defs.resources import build_resources
from event_platform.defs.serving.assets import published_events
from event_platform.store.publication import current_snapshot
from event_platform_tests.conftest import event_line, write_lines
from event_platform_tests.dagster.test_assets import EVERY_PARTITION_CHECK, checks_of, run


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture(params=["duckdb", "iceberg"])
def on_backend(request, settings):
    if request.param == "duckdb":
        return settings
    return dataclasses.replace(
        settings,
        warehouse_backend="iceberg",
        iceberg_catalog_uri=request.getfixturevalue("catalog_uri"),
        iceberg_location=str(settings.data_dir / "iceberg"),
    )


def test_files_materialise_with_every_check_green_and_are_published(on_backend, instance):
    settings = on_backend
    write_lines(settings.landing_dir / "a.jsonl", [event_line(i) for i in range(100)])
    write_lines(settings.landing_dir / "b.jsonl", [event_line(i) for i in range(50, 120)])
    for key in ("a.jsonl", "b.jsonl"):
        result = run(settings, instance, key)
        assert result.success
        checks = checks_of(result)
        assert set(checks) == EVERY_PARTITION_CHECK
        assert all(passed for passed, _ in checks.values()), checks
    assert dg.materialize(
        [published_events], instance=instance, resources=build_resources(settings)
    ).success
    # The Iceberg backend never creates the DuckDB warehouse file.
    assert settings.duckdb_path.exists() == (settings.warehouse_backend == "duckdb")
    snapshot = current_snapshot(settings.published_dir)
    with duckdb.connect(str(snapshot), read_only=True) as con:
        assert con.execute(
            "SELECT count(*), count(DISTINCT event_hash) FROM events"
        ).fetchall() == [(120, 120)]


def test_the_blocking_check_fails_when_the_store_is_tampered_with(on_backend, instance):
    settings = on_backend
    write_lines(settings.landing_dir / "t.jsonl", [event_line(i) for i in range(10)])
    assert run(settings, instance, "t.jsonl").success
    if settings.warehouse_backend == "duckdb":
        from event_platform.store.connection import connect
        from event_platform_tests.iceberg_catalog import Backend

        with connect(settings.duckdb_path) as con:
            Backend("duckdb", con).corrupt("t.jsonl", "DELETE FROM events WHERE line_number = 3")
    else:
        from event_platform.defs.resources import build_resources
        from event_platform_tests.iceberg_catalog import Backend

        store = build_resources(settings)["duckdb"].iceberg_warehouse()
        Backend("iceberg", store).corrupt("t.jsonl", "DELETE FROM events WHERE line_number = 3")
    result = run(
        settings, instance, "t.jsonl", [reconciliation_report, reconciliation_exact], False
    )
    assert checks_of(result)["reconciliation_exact"] == (False, "ERROR")
    assert not result.success


def test_the_maintenance_job_is_bound_with_iceberg_only_and_runs(on_backend, instance):
    from event_platform.definitions import build_definitions

    definitions = build_definitions(on_backend)
    names = {job.name for job in definitions.resolve_all_job_defs()}
    bound = "iceberg_maintenance_job" in names
    assert bound == (on_backend.warehouse_backend == "iceberg")
    if bound:
        job = definitions.resolve_job_def("iceberg_maintenance_job")
        assert job.execute_in_process(instance=instance).success
