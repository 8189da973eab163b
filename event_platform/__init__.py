"""event_platform: validated, reconciled event ingestion on Dagster, polars, pandera and DuckDB."""

__version__ = "0.1.0"
