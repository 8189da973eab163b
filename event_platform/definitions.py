"""The code location: everything under `event_platform.defs`, wired to settings from the env."""

from __future__ import annotations

import dagster as dg

from event_platform.config import Settings
from event_platform.defs.assets import LINEAGE
from event_platform.defs.checks import CHECKS
from event_platform.defs.jobs import ingest_job
from event_platform.defs.published import published_events
from event_platform.defs.pubsub import pubsub_defs
from event_platform.defs.resources import build_resources
from event_platform.defs.sensors import build_landing_sensor


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or Settings.from_env()
    lineage = dg.Definitions(
        assets=[*LINEAGE, published_events],
        asset_checks=CHECKS,
        jobs=[ingest_job],
        sensors=[build_landing_sensor(settings.sensor_interval_seconds)],
        resources=build_resources(settings),
    )
    return dg.Definitions.merge(lineage, pubsub_defs())


defs = build_definitions()
