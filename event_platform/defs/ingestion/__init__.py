"""A landed file's lineage: raw file -> validated and rejected events -> reconciliation report,
with its checks, the landing sensor and the job the sensor launches."""

from __future__ import annotations

import dagster as dg

from event_platform.defs.ingestion.assets import LINEAGE
from event_platform.defs.ingestion.checks import CHECKS
from event_platform.defs.ingestion.jobs import ingest_job
from event_platform.defs.ingestion.sensors import build_landing_sensor


def ingestion_defs(sensor_interval_seconds: int) -> dg.Definitions:
    """Built on call: the sensor's interval is a setting read once, by `definitions.py`."""
    return dg.Definitions(
        assets=LINEAGE,
        asset_checks=CHECKS,
        jobs=[ingest_job],
        sensors=[build_landing_sensor(sensor_interval_seconds)],
    )
