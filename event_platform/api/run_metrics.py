"""Prometheus figures read from the Dagster instance at scrape time: runs as Dagster saw them.

Why the instance and not counters in this process: a run's throughput and its stage timings are
recorded in the `validated_events` materialization metadata by the run itself, and run outcomes
live in the instance's run storage. Both survive a crashed run and an API restart, and they are
the same figures the Dagster UI shows, so the dashboard and the UI never disagree.

Throughput and stage latency (the ingest stages, plus `reconcile` from the reconciliation
report) are summarised over the most recent `RECENT_RUNS` materializations as p50/p90 gauges
(`quantile` label, like a Prometheus summary). When no instance is configured (`DAGSTER_HOME`
unset) or it cannot be read, only `event_platform_dagster_instance_up 0` is exported, so an
alert can tell "no runs" from "cannot see runs".
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from event_platform.run_metadata import (
    INGEST_ASSET,
    LINES_PER_SECOND,
    RECONCILE_ASSET,
    SECONDS,
    STAGE_SECONDS,
)

if TYPE_CHECKING:
    from dagster import DagsterInstance

logger = logging.getLogger(__name__)

RECENT_RUNS = 200
QUANTILES = (0.5, 0.9)
RUN_STATUSES = ("QUEUED", "STARTED", "SUCCESS", "FAILURE", "CANCELED")


def quantile(values: list[float], q: float) -> float:
    """Inclusive linear-interpolated quantile; one sample is its own p50 and p90."""
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[round(q * 100) - 1]


def _metadata_value(metadata: dict[str, Any], name: str) -> Any:
    value = metadata.get(name)
    return getattr(value, "value", value)


class DagsterRunCollector(Collector):
    """Summarises recent ingest runs from the instance on every scrape."""

    def __init__(self, instance: Callable[[], DagsterInstance | None]) -> None:
        self._instance = instance

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # declaring nothing keeps registration from reading the instance

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "event_platform_dagster_instance_up", "1 when the Dagster instance could be read"
        )
        try:
            instance = self._instance()
            families = list(self._from_instance(instance)) if instance is not None else []
            up.add_metric([], 1 if instance is not None else 0)
        except Exception as exc:  # a scrape must never fail because Dagster's storage did
            logger.warning("metrics: Dagster instance unreadable (%s)", type(exc).__name__)
            families = []
            up.add_metric([], 0)
        yield from families
        yield up

    def _from_instance(self, instance: DagsterInstance) -> Iterator[GaugeMetricFamily]:
        import dagster as dg

        runs = GaugeMetricFamily(
            "event_platform_dagster_runs",
            "Runs in the Dagster instance by status",
            labels=["status"],
        )
        for status in RUN_STATUSES:
            count = instance.get_runs_count(dg.RunsFilter(statuses=[dg.DagsterRunStatus[status]]))
            runs.add_metric([status.lower()], count)
        yield runs

        records = instance.fetch_materializations(
            dg.AssetKey(INGEST_ASSET), limit=RECENT_RUNS
        ).records
        throughput: list[float] = []
        stages: dict[str, list[float]] = {}
        for record in records:
            metadata = record.asset_materialization.metadata
            lines_per_second = _metadata_value(metadata, LINES_PER_SECOND)
            if lines_per_second is not None:
                throughput.append(float(lines_per_second))
            for stage, seconds in (_metadata_value(metadata, STAGE_SECONDS) or {}).items():
                stages.setdefault(stage, []).append(float(seconds))

        for record in instance.fetch_materializations(
            dg.AssetKey(RECONCILE_ASSET), limit=RECENT_RUNS
        ).records:
            seconds = _metadata_value(record.asset_materialization.metadata, SECONDS)
            if seconds is not None:
                stages.setdefault("reconcile", []).append(float(seconds))

        observed = GaugeMetricFamily(
            "event_platform_ingest_runs_observed",
            f"Ingest materializations summarised below (the latest, at most {RECENT_RUNS})",
        )
        observed.add_metric([], len(records))
        yield observed
        if records:
            latest = _metadata_value(records[0].asset_materialization.metadata, LINES_PER_SECOND)
            last = GaugeMetricFamily(
                "event_platform_ingest_last_lines_per_second",
                "Throughput of the latest ingest run (lines read / ingest seconds)",
            )
            last.add_metric([], float(latest or 0.0))
            yield last
        if throughput:
            family = GaugeMetricFamily(
                "event_platform_ingest_lines_per_second",
                "Ingest throughput over recent runs (lines read / ingest seconds)",
                labels=["quantile"],
            )
            for q in QUANTILES:
                family.add_metric([str(q)], quantile(throughput, q))
            yield family
        if stages:
            family = GaugeMetricFamily(
                "event_platform_ingest_stage_seconds",
                "Seconds per ingest stage over recent runs",
                labels=["stage", "quantile"],
            )
            for stage, seconds in sorted(stages.items()):
                for q in QUANTILES:
                    family.add_metric([stage, str(q)], quantile(seconds, q))
            yield family


def instance_from_env() -> Callable[[], DagsterInstance | None]:
    """Open `DagsterInstance.get()` on first scrape (and keep it) when `DAGSTER_HOME` is set."""
    opened: list[DagsterInstance] = []

    def load() -> DagsterInstance | None:
        import os

        if not os.environ.get("DAGSTER_HOME"):
            return None
        if not opened:
            import dagster as dg

            opened.append(dg.DagsterInstance.get())
        return opened[0]

    return load
