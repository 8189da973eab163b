"""Reconciliation: proof that every line of a landed file is stored, rejected or a duplicate."""
