"""When the API's snapshot is rebuilt."""

import dagster as dg

from event_platform.defs.serving.assets import published_events

# Publishes the API's snapshot once a file's reconciliation lands. Dagster's own automation
# sensor is created stopped, and the API would then answer 503 until someone published by hand.
publication_sensor = dg.AutomationConditionSensorDefinition(
    "publication_sensor",
    target=dg.AssetSelection.assets(published_events),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=5,
    description="Materialises published_events when a file's reconciliation report lands.",
)
