"""What the HTTP API reads: the published snapshot of reconciled partitions, and its sensor."""

import dagster as dg

from event_platform.defs.serving.assets import published_events
from event_platform.defs.serving.sensors import publication_sensor


def serving_defs() -> dg.Definitions:
    """A builder, like the other domains': a `Definitions` at module scope in the code location
    would be a second one for Dagster's loader, which refuses the location."""
    return dg.Definitions(assets=[published_events], sensors=[publication_sensor])
