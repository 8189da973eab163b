"""The lineage: raw_event_file -> validated_events + rejected_events -> reconciliation_report.

Assets hold no data in Dagster's I/O managers: the file stays in the landing folder and the
rows live in DuckDB, written through SQL we own. Each asset returns the figures a user would
otherwise query for, so the UI answers the first questions and plots them over time.
"""

import hashlib
import time
from enum import Enum
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from event_platform import progress
from event_platform.contract.reasons import disclosed_reason
from event_platform.defs.ingestion.metadata import counts_table, table_metadata
from event_platform.defs.ingestion.partitions import event_files
from event_platform.defs.ingestion.stage_log import StageLog
from event_platform.defs.resources import PlatformResource, warehouse_store
from event_platform.ingest.ingestion import ingest_file
from event_platform.ingest.landing import LandingError, land
from event_platform.reconcile import reconcile_partition
from event_platform.run_metadata import (
    INGEST_ASSET,
    LINES_PER_SECOND,
    RECONCILE_ASSET,
    SECONDS,
    STAGE_SECONDS,
)
from event_platform.runs.versions import WRITER_WAIT_TAG
from event_platform.runs.writer_turn import WRITER_POOL

HASH_BLOCK = 8 * 1024 * 1024


class RawEventFileConfig(dg.Config):
    land_from: str | None = Field(
        default=None,
        description=(
            "Land this file (through any symlink) into the landing folder under the "
            "partition's name before fingerprinting it. The CLI sets it; leave it empty for a "
            "file already landed."
        ),
    )


@dg.asset(
    partitions_def=event_files,
    deps=["pubsub_subscription"],
    kinds={"file"},
    group_name="events",
    description=(
        "A landed event file (dropped in the landing folder or written there by the Pub/Sub "
        "consumer), fingerprinted (sha256, size) as it was when ingested."
    ),
)
def raw_event_file(
    context: dg.AssetExecutionContext, config: RawEventFileConfig, platform: PlatformResource
):
    partition = context.partition_key
    waited = context.run.tags.get(WRITER_WAIT_TAG)
    if waited:
        context.log.info(f"this run waited {waited}s for the warehouse writer before it started")
    if config.land_from:
        progress.report(progress.Progress(partition, progress.LANDING))
        try:
            land(Path(config.land_from), platform.landing_dir, partition)
        except (LandingError, OSError) as exc:
            raise dg.Failure(description=f"cannot land {config.land_from}: {exc}") from exc
    path = platform.landed_file(partition)
    size = path.stat().st_size
    log = StageLog(context, progress.FINGERPRINTING, size)
    digest = hashlib.sha256()
    done = 0
    with path.open("rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
            done += len(block)
            log(0, done)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "sha256": digest.hexdigest(),
            "bytes": dg.MetadataValue.int(size),
        },
        data_version=dg.DataVersion(digest.hexdigest()),
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            INGEST_ASSET,
            deps=[raw_event_file],
            kinds={"duckdb", "polars", "pandera"},
            group_name="events",
            description="Events that passed the contract, one row per event (table main.events).",
        ),
        dg.AssetSpec(
            "rejected_events",
            deps=[raw_event_file],
            kinds={"duckdb"},
            group_name="events",
            description="Every rejected line with all of its reasons (table main.rejected_events).",
        ),
    ],
    partitions_def=event_files,
    pool=WRITER_POOL,
)
def validated_and_rejected_events(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, platform: PlatformResource
):
    path = platform.landed_file(context.partition_key)
    log = StageLog(context, progress.STORING, path.stat().st_size)
    with warehouse_store(duckdb, context.log.warning) as store:
        result = ingest_file(
            path,
            store,
            run_id=context.run.run_id,
            source_file=context.partition_key,
            **platform.reading,
            progress=log,
            log=context.log.info,
            before_commit=lambda: log.switch(progress.COMMITTING),
        )
    context.log.info(
        f"{result.source_file}: {result.lines:,} lines -> {result.stored:,} stored, "
        f"{result.rejected:,} rejected, {result.duplicates:,} duplicates "
        f"in {result.seconds:.2f}s ({result.rows_per_second:,.0f} lines/s)"
    )
    shared = {
        "lines": dg.MetadataValue.int(result.lines),
        "file_sha256": result.file_sha256,
        SECONDS: dg.MetadataValue.float(round(result.seconds, 3)),
        LINES_PER_SECOND: dg.MetadataValue.float(round(result.rows_per_second, 1)),
        "mb_per_second": dg.MetadataValue.float(
            round(result.bytes / 1e6 / result.seconds, 2) if result.seconds else 0.0
        ),
        STAGE_SECONDS: dg.MetadataValue.json(result.stage_seconds),
    }
    yield dg.MaterializeResult(
        asset_key=INGEST_ASSET,
        metadata={
            **shared,
            **table_metadata("events", result.stored),
            "stored": dg.MetadataValue.int(result.stored),
            "duplicates": dg.MetadataValue.int(result.duplicates),
        },
    )
    yield dg.MaterializeResult(
        asset_key="rejected_events",
        metadata={
            **shared,
            **table_metadata("rejected_events", result.rejected + result.duplicates),
            "rejected": dg.MetadataValue.int(result.rejected),
            "duplicates": dg.MetadataValue.int(result.duplicates),
            "rejection_rate": dg.MetadataValue.float(round(result.rejection_rate, 6)),
            # Dagster's event log is no place for a sender's keys: details are masked here too.
            "reasons": counts_table(masked_counts(result.reason_counts), "reason"),
        },
    )


class ReconcileMode(Enum):
    """How the store is compared with the file (event_platform/reconcile/partition.py)."""

    ledger = "ledger"
    full = "full"


class ReconciliationConfig(dg.Config):
    mode: ReconcileMode | None = Field(
        default=None,
        description=(
            "ledger: match the file's lines with the stored rows by digest, and re-derive a "
            "seeded sample with an independent implementation; full: re-derive every line with "
            "the production parser. Empty: EVENT_PLATFORM_RECONCILE_MODE (default ledger)."
        ),
    )
    sample_lines: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Ledger mode: lines drawn for the independent sample. Empty: "
            "EVENT_PLATFORM_RECONCILE_SAMPLE_LINES (default 10000)."
        ),
    )
    sample_seed: int | None = Field(
        default=None,
        description="Ledger mode: the sample's seed, to draw a report's sample again. Empty: new.",
    )


@dg.asset(
    name=RECONCILE_ASSET,
    partitions_def=event_files,
    deps=[INGEST_ASSET, "rejected_events"],
    kinds={"duckdb"},
    group_name="events",
    pool=WRITER_POOL,
    description="Re-reads the file and proves every line sits in exactly one place in the store.",
)
def reconciliation_report(
    context: dg.AssetExecutionContext,
    config: ReconciliationConfig,
    duckdb: DuckDBResource,
    platform: PlatformResource,
):
    path = platform.landed_file(context.partition_key)
    started = time.perf_counter()
    log = StageLog(context, progress.RECONCILING, path.stat().st_size)
    with (
        warehouse_store(duckdb, context.log.warning) as store,
        store.partition(context.partition_key) as con,
    ):
        report = reconcile_partition(
            path,
            con,
            run_id=context.run.run_id,
            source_file=context.partition_key,
            **platform.reading,
            progress=log,
            mode=config.mode.value if config.mode else platform.reconcile_mode,
            sample_lines=(
                platform.reconcile_sample_lines
                if config.sample_lines is None
                else config.sample_lines
            ),
            sample_seed=config.sample_seed,
        )
        store.record_report(con, report)
    verdict = "passed" if report.passed else "FAILED"
    if report.note:
        context.log.warning(f"{report.source_file}: {report.note}")
    context.log.info(f"{report.source_file}: reconciled {report.lines_total:,} lines: {verdict}")
    row = report.row()
    metadata = {
        name: value
        for name, value in row.items()
        if name not in ("source_file", "checked_at", "run_id")
    }
    metadata["samples"] = dg.MetadataValue.json(report.samples)
    # Text: a 62-bit seed is beyond the UI's integers.
    metadata["sample_seed"] = None if report.sample_seed is None else str(report.sample_seed)
    if report.details:
        metadata["ledger"] = dg.MetadataValue.json(report.details)
    if report.note:
        metadata["mode_note"] = report.note
    metadata[SECONDS] = dg.MetadataValue.float(round(time.perf_counter() - started, 3))
    metadata["dagster/table_name"] = "main.reconciliation_reports"
    return dg.MaterializeResult(metadata=metadata)


def masked_counts(reason_counts: dict[str, int]) -> dict[str, int]:
    masked: dict[str, int] = {}
    for reason, lines in reason_counts.items():
        shown = disclosed_reason(reason)
        masked[shown] = masked.get(shown, 0) + lines
    return masked


LINEAGE = [raw_event_file, validated_and_rejected_events, reconciliation_report]
