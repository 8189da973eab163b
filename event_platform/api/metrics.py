"""Prometheus metrics: store figures computed at scrape time, request latency in-process.

Store-derived figures (events stored, rejections per reason, error bucket, pending files, last
successful ingest) are read from the published snapshot when Prometheus scrapes, not counted in
memory: a crashed ingestion run or a restarted API would lose in-process counters, while the
snapshot always says what is really stored. The warehouse itself is never opened here (that
would block ingestion, see `event_platform.store.publication`); only its file size is read with
stat.
The figures are therefore as fresh as the last publication, which is exported as
`event_platform_snapshot_published_timestamp_seconds` so staleness is alertable.

Label values are bounded and never come from the input: rejected lines are labelled by reason
class only (`contract.reasons.reason_class`), and every class is exported, at 0 when absent, so the
series set is fixed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from event_platform.api.run_metrics import DagsterRunCollector, instance_from_env
from event_platform.api.snapshot import SnapshotReader
from event_platform.contract.reasons import OTHER_REASON, REASON_CLASSES
from event_platform.ingest.landing import landed_files

if TYPE_CHECKING:
    from dagster import DagsterInstance

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def _epoch(value: datetime | None) -> float:
    if value is None:
        return 0.0
    return value.replace(tzinfo=UTC).timestamp()


def _pending_landing_files(landing_dir: Path | None, reconciled: set[str]) -> int:
    if landing_dir is None:
        return 0
    return sum(1 for landed in landed_files(landing_dir) if landed.name not in reconciled)


@dataclass(frozen=True)
class _Figures:
    """What one scrape reads from the snapshot, in one cursor."""

    published_at: datetime | None
    events: int
    rejected: int
    last_ingest: datetime | None
    files_published: int
    files_failed: int
    duplicate_reason: str
    per_class: dict[str, int]
    growth: int
    rejected_lines: int
    total_lines: int
    reconciled: set[str]


class StoreCollector(Collector):
    """Reads the snapshot on every scrape; a broken snapshot yields `snapshot_up 0`, not a 500."""

    def __init__(
        self,
        reader: SnapshotReader,
        *,
        landing_dir: Path | None = None,
        warehouse_path: Path | None = None,
    ) -> None:
        self.reader = reader
        self.landing_dir = landing_dir
        self.warehouse_path = warehouse_path

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Declaring nothing keeps registration from running a scrape.
        return iter(())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "event_platform_snapshot_up", "1 when the published snapshot could be read"
        )
        sizes = GaugeMetricFamily(
            "event_platform_duckdb_file_bytes", "Size of DuckDB files on disk", labels=["file"]
        )
        if self.warehouse_path is not None and self.warehouse_path.exists():
            sizes.add_metric(["warehouse"], self.warehouse_path.stat().st_size)
        try:
            yield from self._store_metrics(sizes)
            up.add_metric([], 1)
        except Exception as exc:
            logger.warning("metrics: snapshot unreadable (%s)", type(exc).__name__)
            up.add_metric([], 0)
        yield sizes
        yield up

    def _read_figures(self) -> _Figures:
        hour_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
        with self.reader.cursor() as cur:
            info = cur.execute(
                """SELECT published_at, events, rejected, last_successful_ingest,
                          files_published, files_failed, duplicate_reason
                   FROM snapshot_info"""
            ).fetchone()
            per_class = dict.fromkeys(sorted(REASON_CLASSES | {OTHER_REASON}), 0)
            for reason_class, lines in cur.execute(
                "SELECT reason_class, sum(lines) FROM rejection_reason_classes GROUP BY ALL"
            ).fetchall():
                per_class[reason_class if reason_class in per_class else OTHER_REASON] += lines
            (growth,) = cur.execute(
                "SELECT count(*) FROM rejected_events WHERE rejected_at >= ?", [hour_ago]
            ).fetchone()
            rejected_lines, total_lines = cur.execute(
                """SELECT coalesce(sum(rejected), 0), coalesce(sum(lines_total), 0) FROM (
                       SELECT rejected, lines_total FROM reconciliation_reports
                       QUALIFY row_number() OVER (
                           PARTITION BY source_file ORDER BY checked_at DESC) = 1)"""
            ).fetchone()
            reconciled = {
                row[0]
                for row in cur.execute(
                    "SELECT DISTINCT source_file FROM reconciliation_reports"
                ).fetchall()
            }
        return _Figures(*info, per_class, growth, rejected_lines, total_lines, reconciled)

    def _store_metrics(self, sizes: GaugeMetricFamily) -> Iterator[GaugeMetricFamily]:
        f = self._read_figures()
        # Read after the cursor: opening it is what follows a newly published snapshot.
        target = self.reader.target
        if target is not None and os.path.exists(target):
            sizes.add_metric(["snapshot"], os.path.getsize(target))

        def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
            family = GaugeMetricFamily(name, documentation)
            family.add_metric([], value)
            return family

        yield gauge(
            "event_platform_events_stored",
            "Events served (files whose latest reconciliation passed)",
            f.events,
        )
        per_reason = GaugeMetricFamily(
            "event_platform_rejected_lines",
            "Rejected lines per reason class (a line with reasons of two classes counts in both)",
            labels=["reason"],
        )
        for reason_class, lines in f.per_class.items():
            per_reason.add_metric([reason_class], lines)
        yield per_reason
        yield gauge(
            "event_platform_rejection_rate",
            "Rejected (non-duplicate) lines / lines read, latest reconciliation of every file",
            (f.rejected_lines / f.total_lines) if f.total_lines else 0.0,
        )
        yield gauge(
            "event_platform_error_bucket_rows",
            f"Rows in rejected_events (invalid lines and '{f.duplicate_reason}' rows)",
            f.rejected,
        )
        yield gauge(
            "event_platform_error_bucket_growth_1h",
            "rejected_events rows with rejected_at in the last hour",
            f.growth,
        )
        yield gauge(
            "event_platform_landing_files_pending",
            "Files in the landing folder without a reconciliation report",
            _pending_landing_files(self.landing_dir, f.reconciled),
        )
        yield gauge(
            "event_platform_files_published",
            "Files whose latest reconciliation passed (served)",
            f.files_published,
        )
        yield gauge(
            "event_platform_files_failed_reconciliation",
            "Files whose latest reconciliation failed (not served)",
            f.files_failed,
        )
        yield gauge(
            "event_platform_last_successful_ingest_timestamp_seconds",
            "When the latest passing reconciliation ran (0 if none)",
            _epoch(f.last_ingest),
        )
        yield gauge(
            "event_platform_snapshot_published_timestamp_seconds",
            "When the served snapshot was published",
            _epoch(f.published_at),
        )


def build_registry(
    reader: SnapshotReader,
    *,
    landing_dir: Path | None,
    warehouse_path: Path | None,
    dagster_instance: Callable[[], DagsterInstance | None] | None = None,
) -> tuple[CollectorRegistry, Histogram]:
    """A registry per app (not the global one), so several apps in one process do not clash.

    Under several worker processes (`PROMETHEUS_MULTIPROC_DIR` set, see `event-platform serve`)
    the histogram writes to the shared files instead and the registry reads all of them.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        StoreCollector(reader, landing_dir=landing_dir, warehouse_path=warehouse_path)
    )
    registry.register(DagsterRunCollector(dagster_instance or instance_from_env()))
    shared = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    if shared:
        MultiProcessCollector(registry)
    latency = Histogram(
        "event_platform_api_request_duration_seconds",
        "HTTP request latency by route template (never the raw path: it may hold an email)",
        ["method", "route", "status"],
        buckets=LATENCY_BUCKETS,
        registry=None if shared else registry,
    )
    return registry, latency
