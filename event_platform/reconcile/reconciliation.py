"""The names of `event_platform.reconcile` under the module path older callers import."""

from event_platform.reconcile import (
    MODES,
    SAMPLE_SIZE,
    ReconciliationReport,
    reconcile_partition,
    record_report,
)

__all__ = ["MODES", "SAMPLE_SIZE", "ReconciliationReport", "reconcile_partition", "record_report"]
