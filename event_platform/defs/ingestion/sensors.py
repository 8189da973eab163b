"""The landing sensor: every new or replaced file becomes a partition and a run.

The cursor is a high-water mark (landing time, name), not the set of files seen, so it stays a
few bytes at 100k files. Run keys carry the file's fingerprint, so a new version of a name is
ingested again while a re-listed, unchanged file is not. A version that already has a run (the
CLI lands a file from inside its own run) gets no second one: one run per file version.
"""

import json

import dagster as dg

from event_platform.defs.ingestion.jobs import ingest_job
from event_platform.defs.ingestion.partitions import event_files
from event_platform.defs.resources import PlatformResource
from event_platform.ingest.landing import landed_files
from event_platform.runs.versions import FINGERPRINT_TAG, TRIGGER_TAG, latest_run_of_version
from event_platform.settings import DEFAULT_SENSOR_INTERVAL_SECONDS

MAX_FILES_PER_TICK = 200


def _read_cursor(cursor: str | None) -> tuple[int, str]:
    if not cursor:
        return (0, "")
    mark = json.loads(cursor)
    return (int(mark["landed_ns"]), str(mark["name"]))


def _landing_tick(context: dg.SensorEvaluationContext, platform: PlatformResource):
    mark = _read_cursor(context.cursor)
    fresh = [f for f in landed_files(platform.landing_dir) if (f.landed_ns, f.name) > mark]
    if not fresh:
        return dg.SkipReason(f"no new files in {platform.landing_dir}")
    batch = fresh[:MAX_FILES_PER_TICK]
    last = batch[-1]
    cursor = json.dumps({"landed_ns": last.landed_ns, "name": last.name})
    batch = [
        f for f in batch if latest_run_of_version(context.instance, f.name, f.fingerprint) is None
    ]
    if not batch:
        return dg.SensorResult(
            skip_reason=dg.SkipReason("every new file version already has a run"), cursor=cursor
        )
    new_keys = [
        f.name
        for f in batch
        if not context.instance.has_dynamic_partition(event_files.name, f.name)
    ]
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                partition_key=f.name,
                run_key=f"{f.name}@{f.fingerprint}",
                tags={FINGERPRINT_TAG: f.fingerprint, TRIGGER_TAG: "sensor"},
            )
            for f in batch
        ],
        dynamic_partitions_requests=[event_files.build_add_request(new_keys)] if new_keys else [],
        cursor=cursor,
    )


def build_landing_sensor(
    interval_seconds: int = DEFAULT_SENSOR_INTERVAL_SECONDS,
) -> dg.SensorDefinition:
    """The sensor, ticking at most every `interval_seconds`.

    The interval bounds how long a landed file waits before its run is created. A tick lists
    the landing folder (benchmarks/latency_bench.py times that), so a large folder wants a
    longer interval.
    """

    @dg.sensor(
        name="landing_sensor",
        job=ingest_job,
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Registers each file landed in $EVENT_PLATFORM_DATA_DIR/landing and ingests it."
        ),
    )
    def landing_sensor(context: dg.SensorEvaluationContext, platform: PlatformResource):
        return _landing_tick(context, platform)

    return landing_sensor
