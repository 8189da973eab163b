"""How a stream's contract is written down.

A contract has two halves. The *shape* (which keys exist, nested how, holding which JSON type)
is checked by the structural parser in one pass of DuckDB's JSON kernel. The *values* (ranges,
formats) are a pandera polars schema over the extracted text, whose check names are our reason
codes. A new stream is one module that builds a `StreamContract`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import pandera.polars as pa
import polars as pl

JsonType = Literal["integer", "string", "object"]


@dataclass(frozen=True)
class FieldSpec:
    """One key of the record; `path` is dotted (`data.user_email`) and names it in reasons."""

    path: str
    json_type: JsonType

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]

    @property
    def parent(self) -> str:
        return self.path.rsplit(".", 1)[0] if "." in self.path else ""


@dataclass(frozen=True)
class StreamContract:
    """Everything the engine needs to know about one stream.

    - `fields`: every key at every level; objects list their children after themselves.
    - `value_schema(allowed_event_types)`: pandera schema over the scalar leaves, extracted as
      text (JSON integers as their literal); check names are reason codes.
    - `typed_columns`: polars expressions turning the checked text into stored types.
    - `canonical`: a polars expression over a valid line's checked text (the value schema's
      columns) that renders one event canonically; its sha256 is `event_hash` (see
      `event_platform.ingest.hashing`). It must equal `canonical_sql` over the typed, stored values.
    - `canonical_sql`: the same rendering in SQL over the stored columns. Reconciliation
      hashes the rows read back from the store with it, so every reconciliation also proves,
      row by row, that the two renderings agree.
    """

    name: str
    fields: tuple[FieldSpec, ...]
    value_schema: Callable[[frozenset[int]], pa.DataFrameSchema]
    typed_columns: tuple[pl.Expr, ...]
    canonical: pl.Expr
    canonical_sql: str

    @property
    def scalar_fields(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.json_type != "object")

    def children(self, parent: str) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.parent == parent)

    @property
    def paths(self) -> frozenset[str]:
        """Every field path the contract names, at every level."""
        return frozenset(f.path for f in self.fields)

    @property
    def object_paths(self) -> tuple[str, ...]:
        return ("", *(f.path for f in self.fields if f.json_type == "object"))
