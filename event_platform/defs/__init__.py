"""Dagster wiring: a thin layer over the plain-Python domain (contract, validation, store)."""
