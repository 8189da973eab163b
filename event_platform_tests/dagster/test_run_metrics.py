"""`/metrics` figures read from the Dagster instance: runs by status, throughput and stage p50/p90.

Runs are real materialisations on a real (temporary) instance; the expected quantiles are
computed here from each run's own result, independently of the collector's reading of the
instance's event log.
"""

from __future__ import annotations

import dagster as dg
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from event_platform.api.run_metrics import DagsterRunCollector
from event_platform.defs.ingestion.assets import LINEAGE
from event_platform.defs.ingestion.partitions import event_files
from event_platform.defs.resources import build_resources
from event_platform_tests.conftest import event_line, write_lines


def scrape(loader) -> dict[str, list]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DagsterRunCollector(loader))
    return {
        family.name: family.samples
        for family in text_string_to_metric_families(generate_latest(registry).decode())
    }


def materialize(settings, instance, key: str) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions(event_files.name, [key])
    return dg.materialize(
        LINEAGE,
        instance=instance,
        partition_key=key,
        resources=build_resources(settings),
        raise_on_error=False,
    )


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key.to_user_string() == asset:
            return {name: value.value for name, value in materialization.metadata.items()}
    raise AssertionError(f"{asset} was not materialised")


def interpolated(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def test_runs_throughput_and_stage_quantiles_come_from_the_instance(settings):
    with dg.instance_for_test() as instance:
        results = []
        for index, lines in enumerate((50, 400, 2000)):
            name = f"day{index}.jsonl"
            write_lines(settings.landing_dir / name, [event_line(i) for i in range(lines)])
            results.append(materialize(settings, instance, name))
        assert all(result.success for result in results)
        missing = materialize(settings, instance, "never-landed.jsonl")
        assert not missing.success

        samples = scrape(lambda: instance)

    def value(family: str, **labels) -> float:
        (sample,) = [s for s in samples[family] if s.labels == labels]
        return sample.value

    assert value("event_platform_dagster_instance_up") == 1
    assert value("event_platform_dagster_runs", status="success") == 3
    assert value("event_platform_dagster_runs", status="failure") == 1
    assert value("event_platform_ingest_runs_observed") == 3

    ingest = [metadata(result, "validated_events") for result in results]
    throughput = [run["lines_per_second"] for run in ingest]
    assert value("event_platform_ingest_last_lines_per_second") == pytest.approx(throughput[-1])
    for q in (0.5, 0.9):
        assert value("event_platform_ingest_lines_per_second", quantile=str(q)) == pytest.approx(
            interpolated(throughput, q)
        )
    stages = {stage for run in ingest for stage in run["stage_seconds"]}
    assert stages, "ingest runs record their stage timings"
    for stage in stages:
        seconds = [run["stage_seconds"][stage] for run in ingest]
        assert value(
            "event_platform_ingest_stage_seconds", stage=stage, quantile="0.9"
        ) == pytest.approx(interpolated(seconds, 0.9))
    reconcile = [metadata(result, "reconciliation_report")["seconds"] for result in results]
    assert value(
        "event_platform_ingest_stage_seconds", stage="reconcile", quantile="0.5"
    ) == pytest.approx(interpolated(reconcile, 0.5))


def test_without_an_instance_only_instance_up_zero_is_exported():
    assert scrape(lambda: None) == {
        "event_platform_dagster_instance_up": scrape(lambda: None)[
            "event_platform_dagster_instance_up"
        ]
    }
    (sample,) = scrape(lambda: None)["event_platform_dagster_instance_up"]
    assert sample.value == 0


def test_an_unreadable_instance_does_not_fail_the_scrape():
    def broken():
        raise RuntimeError("storage is down")

    samples = scrape(broken)
    assert set(samples) == {"event_platform_dagster_instance_up"}
    assert samples["event_platform_dagster_instance_up"][0].value == 0
