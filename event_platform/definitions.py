"""The code location: everything under `event_platform.defs`, wired to settings from the env.

This module is the Dagster entry point: it reads the settings once and hands them to the
sensors it builds and, as resources, to every asset, check and sensor.
"""

from __future__ import annotations

import dagster as dg

from event_platform.defs.assets import LINEAGE
from event_platform.defs.checks import CHECKS
from event_platform.defs.jobs import ingest_job
from event_platform.defs.published import published_events
from event_platform.defs.pubsub import pubsub_defs
from event_platform.defs.resources import build_resources
from event_platform.defs.sensors import build_landing_sensor
from event_platform.settings import Settings

# Publishes the API's snapshot once a file's reconciliation lands. Dagster's own automation
# sensor is created stopped, and the API would then answer 503 until someone published by hand.
publication_sensor = dg.AutomationConditionSensorDefinition(
    "publication_sensor",
    target=dg.AssetSelection.assets(published_events),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=5,
    description="Materialises published_events when a file's reconciliation report lands.",
)


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or Settings.from_env()
    lineage = dg.Definitions(
        assets=[*LINEAGE, published_events],
        asset_checks=CHECKS,
        jobs=[ingest_job],
        sensors=[build_landing_sensor(settings.sensor_interval_seconds), publication_sensor],
        resources=build_resources(settings),
        # Every job, including the UI's ad-hoc materialisations, runs its steps in one process:
        # the steps are short and share one file, and a process per step costs seconds each.
        executor=dg.in_process_executor,
    )
    return dg.Definitions.merge(lineage, pubsub_defs(settings.pubsub))


defs = build_definitions()
