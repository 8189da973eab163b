"""Drain the subscription into the landing folder on every tick.

The sensor only writes files: the landing-folder sensor ingests them, so Pub/Sub and file drops
share one lineage. Each tick is bounded by `sensor_drain_seconds` (default 30 s) because Dagster
kills a tick at 60 s; a killed tick is safe (unacked messages are redelivered) but wasteful.
The tick also records an observation of `pubsub_subscription` and the backlog check's verdict,
so the asset graph shows the consumer's health without launching runs.
"""

from __future__ import annotations

import dagster as dg

from event_platform.defs.pubsub.assets import BACKLOG_CHECK_NAME, PUBSUB_ASSET_KEY
from event_platform.defs.pubsub.health import backlog_verdict, status_metadata
from event_platform.defs.resources import PubSubResource
from event_platform.pubsub.consumer import PubSubError, drain, make_subscriber
from event_platform.pubsub.status import record_drain
from event_platform.settings import PubSubSettings

SENSOR_NAME = "pubsub_drain_sensor"


def build_pubsub_sensor(settings: PubSubSettings) -> dg.SensorDefinition:
    """RUNNING by default only with a subscription configured: a plain checkout stays quiet.

    The tick itself reads the same settings from the `pubsub` resource.
    """
    configured = settings.subscription is not None

    @dg.sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=30,
        default_status=(
            dg.DefaultSensorStatus.RUNNING if configured else dg.DefaultSensorStatus.STOPPED
        ),
        description="Pulls Pub/Sub micro-batches into the landing folder, then acks them.",
    )
    def pubsub_drain_sensor(
        context: dg.SensorEvaluationContext, pubsub: PubSubResource
    ) -> dg.SensorResult:
        current = pubsub.settings
        if not current.subscription:
            return dg.SensorResult(skip_reason="no EVENT_PLATFORM_PUBSUB_SUBSCRIPTION configured")
        try:
            stats = drain(
                make_subscriber(),
                current,
                max_seconds=current.sensor_drain_seconds,
                attempts=3,
            )
        except PubSubError as exc:
            context.log.warning("Pub/Sub drain failed: %s", exc)
            return dg.SensorResult(skip_reason=f"Pub/Sub unavailable: {exc}")
        status = record_drain(current.status_path, stats, source="sensor")
        metadata = status_metadata(status, current)
        passed, why = backlog_verdict(status, current)
        context.log.info("%s: %s", current.subscription, stats.summary())
        return dg.SensorResult(
            skip_reason=f"{stats.summary()}; landing sensor ingests the files",
            asset_events=[
                dg.AssetObservation(asset_key=PUBSUB_ASSET_KEY, metadata=metadata),
                dg.AssetCheckEvaluation(
                    asset_key=PUBSUB_ASSET_KEY,
                    check_name=BACKLOG_CHECK_NAME,
                    passed=passed,
                    severity=dg.AssetCheckSeverity.WARN,
                    description=why,
                    metadata=metadata,
                ),
            ],
        )

    return pubsub_drain_sensor
