"""The Pub/Sub subscription as an observable source asset, upstream of the landing files."""

from __future__ import annotations

import dagster as dg

from event_platform.defs.pubsub.health import backlog_verdict, status_metadata
from event_platform.defs.resources import PubSubResource
from event_platform.pubsub.status import read_status

PUBSUB_ASSET_KEY = dg.AssetKey("pubsub_subscription")
BACKLOG_CHECK_NAME = "pubsub_backlog_ok"


@dg.observable_source_asset(
    name="pubsub_subscription",
    group_name="pubsub",
    description=(
        "Google Cloud Pub/Sub subscription drained into landing-folder micro-batch files "
        "(at-least-once; duplicates become duplicate_event rejections downstream)."
    ),
)
def pubsub_subscription(pubsub: PubSubResource) -> dg.ObserveResult:
    """Reports the consumer's status file; the data version moves when messages are acked."""
    settings = pubsub.settings
    status = read_status(settings.status_path)
    acked = status.get("totals", {}).get("acked", 0)
    return dg.ObserveResult(
        data_version=dg.DataVersion(f"acked-{acked}"),
        metadata=status_metadata(status, settings),
    )


@dg.asset_check(
    asset=pubsub_subscription,
    name=BACKLOG_CHECK_NAME,
    description="Warns when the backlog looks like it is growing or a message waited too long.",
)
def pubsub_backlog_check(pubsub: PubSubResource) -> dg.AssetCheckResult:
    settings = pubsub.settings
    status = read_status(settings.status_path)
    passed, why = backlog_verdict(status, settings)
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=why,
        metadata=status_metadata(status, settings),
    )
