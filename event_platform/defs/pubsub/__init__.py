"""Pub/Sub source definitions, merged into the project's `Definitions` by the core team."""

from __future__ import annotations

import dagster as dg

from event_platform.defs.pubsub.assets import pubsub_backlog_check, pubsub_subscription
from event_platform.defs.pubsub.sensors import build_pubsub_sensor
from event_platform.defs.resources import PubSubResource
from event_platform.settings import PubSubSettings


def pubsub_defs(settings: PubSubSettings) -> dg.Definitions:
    """Built on call so the sensor's default status follows the settings read at load time;
    the asset, its check and the sensor read the same settings from the `pubsub` resource."""
    return dg.Definitions(
        assets=[pubsub_subscription],
        asset_checks=[pubsub_backlog_check],
        sensors=[build_pubsub_sensor(settings)],
        resources={"pubsub": PubSubResource.from_settings(settings)},
    )
