"""Iceberg maintenance as a Dagster job on a daily schedule: snapshot expiry, orphan removal.

Bound only when the Iceberg backend is chosen; the DuckDB file needs neither.
"""

import dagster as dg

from event_platform.defs.resources import WarehouseResource
from event_platform.store.iceberg.maintenance import maintain


@dg.op(description="Expire Iceberg snapshots past the retention, then remove orphan files.")
def iceberg_maintenance(context: dg.OpExecutionContext, duckdb: WarehouseResource) -> None:
    result = maintain(duckdb.iceberg_warehouse().catalog)
    context.log.info(
        f"expired snapshots {result.expired_snapshots}; removed files {result.removed_files}"
    )


@dg.job(description="Iceberg warehouse maintenance (snapshot expiry and orphan-file removal).")
def iceberg_maintenance_job() -> None:
    iceberg_maintenance()


maintenance_defs = dg.Definitions(
    jobs=[iceberg_maintenance_job],
    schedules=[
        dg.ScheduleDefinition(
            job=iceberg_maintenance_job,
            cron_schedule="17 3 * * *",
            default_status=dg.DefaultScheduleStatus.RUNNING,
        )
    ],
)
