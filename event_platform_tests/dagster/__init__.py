"""Dagster tests: assets, checks and sensors materialised and ticked with real instances."""
