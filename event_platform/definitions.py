"""The code location: the Definitions of each domain under `event_platform.defs`, merged.

Wired by hand rather than with `load_from_defs_folder`: the settings are read once, here, and
some definitions are built from them (the sensors' intervals and default status), which an
autoloader that imports module-level objects could only do by reading the environment at
import time in every module. Each domain package exposes one `Definitions` (or a builder).
"""

from __future__ import annotations

import dagster as dg

from event_platform.defs.ingestion import ingestion_defs
from event_platform.defs.pubsub import pubsub_defs
from event_platform.defs.resources import build_resources
from event_platform.defs.serving import serving_defs
from event_platform.settings import Settings


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or Settings.from_env()
    shared = dg.Definitions(
        resources=build_resources(settings),
        # Every job, including the UI's ad-hoc materialisations, runs its steps in one process:
        # the steps are short and share one file, and a process per step costs seconds each.
        executor=dg.in_process_executor,
    )
    domains = [
        ingestion_defs(settings.sensor_interval_seconds),
        serving_defs(),
        pubsub_defs(settings.pubsub),
    ]
    if settings.warehouse_backend == "iceberg":
        from event_platform.defs.maintenance import maintenance_defs

        domains.append(maintenance_defs)
    return dg.Definitions.merge(shared, *domains)


defs = build_definitions()
