"""Names shared by the writers and the readers of run metadata in the Dagster instance.

The assets (`defs/ingestion/assets.py`) write these keys into materialization metadata and
`/metrics` (`api/run_metrics.py`) reads them back from the instance; a key renamed on one side alone
would silently empty a dashboard. This module imports nothing, so the API can use it without loading
Dagster.
"""

from __future__ import annotations

# Asset keys whose materializations carry the figures below.
INGEST_ASSET = "validated_events"
RECONCILE_ASSET = "reconciliation_report"

# On INGEST_ASSET: lines read per second of the ingest step.
LINES_PER_SECOND = "lines_per_second"
# On INGEST_ASSET: seconds per ingest stage, a JSON object {stage: seconds}.
STAGE_SECONDS = "stage_seconds"
# On INGEST_ASSET and RECONCILE_ASSET: seconds the step took.
SECONDS = "seconds"
