"""`published_events`: the snapshot the HTTP API serves, refreshed after reconciliation.

It only reads the warehouse (attached read-only for the few seconds the copy takes, see
`event_platform.store.publication`), but DuckDB refuses even a reader while another process writes,
so it takes its turn in the `duckdb_writer` pool like the writers.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from event_platform import progress
from event_platform.defs.resources import PlatformResource, publication_source
from event_platform.runs.writer_turn import WRITER_POOL
from event_platform.store.publication import publish_snapshot


@dg.asset(
    deps=[dg.AssetKey("reconciliation_report")],
    kinds={"duckdb"},
    group_name="serving",
    pool=WRITER_POOL,
    # Re-publish whenever a file's reconciliation lands. Publication itself keeps out every
    # file whose latest report failed, so a failed blocking check never reaches the API.
    automation_condition=dg.AutomationCondition.eager(),
    description=(
        "Immutable DuckDB snapshot of events whose file passed reconciliation, plus the "
        "reconciliation reports and rejections; published_dir/current.duckdb points at it."
    ),
)
def published_events(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, platform: PlatformResource
) -> dg.MaterializeResult:
    progress.report(progress.Progress("snapshot", progress.PUBLISHING))
    with publication_source(duckdb) as source:
        result = publish_snapshot(
            source, platform.published_dir, memory_limit=platform.duckdb_memory_limit
        )
    context.log.info(f"published {result.snapshot.name} ({result.events:,} events)")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(result.events),
            "snapshot": dg.MetadataValue.path(str(result.snapshot)),
            "rejected_rows": dg.MetadataValue.int(result.rejected),
            "files_published": dg.MetadataValue.int(result.files_published),
            "files_failed_reconciliation": dg.MetadataValue.int(result.files_failed),
            "seconds": dg.MetadataValue.float(round(result.seconds, 3)),
        }
    )
