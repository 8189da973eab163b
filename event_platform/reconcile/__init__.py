"""Reconciliation: proof that every line of a landed file is stored, rejected or a duplicate.

`partition` re-derives one partition from its file and compares it with the store; `report`
holds the verdict and records it.
"""

from event_platform.reconcile.partition import reconcile_partition
from event_platform.reconcile.report import SAMPLE_SIZE, ReconciliationReport, record_report

__all__ = ["SAMPLE_SIZE", "ReconciliationReport", "reconcile_partition", "record_report"]
