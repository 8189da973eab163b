"""The lineage: raw_event_file -> validated_events + rejected_events -> reconciliation_report.

Assets hold no data in Dagster's I/O managers: the file stays in the landing folder and the
rows live in DuckDB, written through SQL we own. Each asset returns the figures a user would
otherwise query for, so the UI answers the first questions and plots them over time.
"""

import hashlib
import time

import dagster as dg
from dagster_duckdb import DuckDBResource

from event_platform.defs.metadata import counts_table, table_metadata
from event_platform.defs.partitions import event_files
from event_platform.defs.resources import PlatformResource, warehouse
from event_platform.ingestion import ingest_file
from event_platform.reconciliation import reconcile_partition, record_report

WRITER_POOL = "duckdb_writer"
HASH_BLOCK = 8 * 1024 * 1024


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
def raw_event_file(context: dg.AssetExecutionContext, platform: PlatformResource):
    path = platform.landed_file(context.partition_key)
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
    stat = path.stat()
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "sha256": digest.hexdigest(),
            "bytes": dg.MetadataValue.int(stat.st_size),
        },
        data_version=dg.DataVersion(digest.hexdigest()),
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "validated_events",
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

    def progress(lines: int, bytes_read: int) -> None:
        context.log.info(f"{context.partition_key}: {lines:,} lines, {bytes_read / 1e6:,.0f} MB")

    with warehouse(duckdb) as con:
        result = ingest_file(
            path,
            con,
            run_id=context.run.run_id,
            source_file=context.partition_key,
            allowed_event_types=platform.event_types,
            chunk_bytes=platform.chunk_bytes,
            progress=progress,
            log=context.log.info,
        )
    context.log.info(
        f"{result.source_file}: {result.lines:,} lines -> {result.stored:,} stored, "
        f"{result.rejected:,} rejected, {result.duplicates:,} duplicates "
        f"in {result.seconds:.2f}s ({result.rows_per_second:,.0f} lines/s)"
    )
    shared = {
        "lines": dg.MetadataValue.int(result.lines),
        "file_sha256": result.file_sha256,
        "seconds": dg.MetadataValue.float(round(result.seconds, 3)),
        "lines_per_second": dg.MetadataValue.float(round(result.rows_per_second, 1)),
        "mb_per_second": dg.MetadataValue.float(round(result.bytes / 1e6 / result.seconds, 2)),
        "stage_seconds": dg.MetadataValue.json(result.stage_seconds),
    }
    yield dg.MaterializeResult(
        asset_key="validated_events",
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
            "reasons": counts_table(result.reason_counts, "reason"),
        },
    )


@dg.asset(
    partitions_def=event_files,
    deps=["validated_events", "rejected_events"],
    kinds={"duckdb"},
    group_name="events",
    pool=WRITER_POOL,
    description="Re-reads the file and proves every line sits in exactly one place in the store.",
)
def reconciliation_report(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, platform: PlatformResource
):
    path = platform.landed_file(context.partition_key)
    started = time.perf_counter()

    def progress(lines: int, bytes_read: int) -> None:
        context.log.info(
            f"{context.partition_key}: {lines:,} lines reconciled, {bytes_read / 1e6:,.0f} MB"
        )

    with warehouse(duckdb) as con:
        report = reconcile_partition(
            path,
            con,
            run_id=context.run.run_id,
            source_file=context.partition_key,
            allowed_event_types=platform.event_types,
            chunk_bytes=platform.chunk_bytes,
            progress=progress,
        )
        record_report(con, report)
    row = report.row()
    metadata = {
        name: value
        for name, value in row.items()
        if name not in ("source_file", "checked_at", "run_id")
    }
    metadata["samples"] = dg.MetadataValue.json(report.samples)
    metadata["seconds"] = dg.MetadataValue.float(round(time.perf_counter() - started, 3))
    metadata["dagster/table_name"] = "main.reconciliation_reports"
    return dg.MaterializeResult(metadata=metadata)


LINEAGE = [raw_event_file, validated_and_rejected_events, reconciliation_report]
