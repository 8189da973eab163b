"""Reconciliation: proof that every line of a landed file is stored, rejected or a duplicate.

`partition` compares one partition's file with the store, by its line ledger (`ledger`) and an
independent sample (`sample`, `independent`) or by re-deriving every line; `report` holds the
verdict and records it.
"""

from event_platform.reconcile.partition import MODES, reconcile_partition
from event_platform.reconcile.report import SAMPLE_SIZE, ReconciliationReport, record_report

__all__ = ["MODES", "SAMPLE_SIZE", "ReconciliationReport", "reconcile_partition", "record_report"]
