"""How a polars frame crosses into DuckDB: as Arrow, without rewriting its strings.

polars keeps strings as Arrow string views. `DataFrame.to_arrow()` defaults to the oldest
compatibility level and so rewrites every string column into `large_string`: a copy of each
chunk's text on the writer's thread, which bounds ingestion.
DuckDB reads string views as they are.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa


def arrow_view(frame: pl.DataFrame) -> pa.Table:
    """`frame` as an Arrow table for DuckDB's replacement scan, sharing polars' buffers."""
    return frame.to_arrow(compat_level=pl.CompatLevel.newest())
