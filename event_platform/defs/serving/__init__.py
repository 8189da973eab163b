"""What the HTTP API reads: the published snapshot of reconciled partitions, and its sensor."""

import dagster as dg

from event_platform.defs.serving.assets import published_events
from event_platform.defs.serving.sensors import publication_sensor

serving_defs = dg.Definitions(assets=[published_events], sensors=[publication_sensor])
