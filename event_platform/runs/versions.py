"""One run per file version, whoever starts it: the sensor, the CLI or a user in the UI.

A version is a partition (the file's name) and its fingerprint (size and mtime, see
`landing.fingerprint_of`). Every run that ingests a version carries both as tags, and the
sensor and the CLI look for an existing run of a version before they start one.
"""

from __future__ import annotations

import dagster as dg
from dagster._core.storage.dagster_run import RunsFilter

FINGERPRINT_TAG = "event_platform/fingerprint"
TRIGGER_TAG = "event_platform/trigger"
# Seconds a CLI run waited for the warehouse writer before it started, for its own log.
WRITER_WAIT_TAG = "event_platform/writer_wait_seconds"
PARTITION_TAG = "dagster/partition"

ENDED_BADLY = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


def version_tags(partition: str, fingerprint: str) -> dict[str, str]:
    return {PARTITION_TAG: partition, FINGERPRINT_TAG: fingerprint}


def latest_run_of_version(
    instance: dg.DagsterInstance, partition: str, fingerprint: str
) -> dg.DagsterRun | None:
    """The newest run that ingests this version, whatever its status.

    The sensor starts no run for a version that has one; the CLI runs a version again only
    when its run ended badly (`ENDED_BADLY`), which is how a failed ingestion is retried.
    """
    runs = instance.get_runs(filters=RunsFilter(tags=version_tags(partition, fingerprint)), limit=1)
    return runs[0] if runs else None
