"""Validation: one chunk of raw lines to typed valid rows and rejected rows with every reason.

Shape reasons come from the structural parser (DuckDB's JSON kernel); value reasons come from
the contract's pandera schema, whose failure cases carry the row index and the check name, which
is the reason code. Both are lists per line, concatenated, so a line gets each reason that applies.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl
from pandera.errors import SchemaErrors

from event_platform.contract import StreamContract
from event_platform.ingest.hashing import CANONICAL_COLUMN
from event_platform.ingest.lines import LineChunk
from event_platform.ingest.parsing import StructuralParser
from event_platform.settings import DEFAULT_DUCKDB_MEMORY_LIMIT

REASONS = pl.List(pl.String)
LINE_TOO_LONG = "line_too_long"


@dataclass(frozen=True)
class ValidatedChunk:
    """One chunk's verdicts.

    `valid`: line_number, raw, the stored columns and `canonical` (hashed, then dropped, by
    `with_event_hash`); `rejected`: line_number, raw_line (the line's exact bytes), reasons.
    """

    valid: pl.DataFrame
    rejected: pl.DataFrame


class Validator:
    """Validates chunks against one contract; owns a private in-memory DuckDB for parsing."""

    def __init__(
        self,
        contract: StreamContract,
        allowed_event_types: frozenset[int],
        memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT,
    ) -> None:
        self.contract = contract
        self.parser = StructuralParser(contract)
        self.schema = contract.value_schema(allowed_event_types)
        self.scalar_columns = [f.name for f in contract.scalar_fields]
        self.paths = {f.name: f.path for f in contract.scalar_fields}
        # Holds one chunk at a time; capped like the warehouse so memory stays flat.
        self._con = duckdb.connect(":memory:", config={"memory_limit": memory_limit})
        self.parser.prepare(self._con)

    def close(self) -> None:
        self._con.close()

    def _value_reasons(self, parsed: pl.DataFrame) -> pl.DataFrame:
        """Row index -> list of value reasons (`check:path`), only for rows that failed a check."""
        try:
            self.schema.validate(parsed.select(self.scalar_columns), lazy=True)
        except SchemaErrors as errors:
            cases = errors.failure_cases
            if cases["index"].null_count():
                # A schema-level failure (a column or dtype) means the parser and the contract
                # disagree: a bug, never bad input.
                raise RuntimeError(
                    f"contract {self.contract.name} is inconsistent: {cases}"
                ) from None
            return (
                cases.select(
                    pl.col("index").cast(pl.UInt32).alias("row"),
                    pl.concat_str(
                        pl.col("check"), pl.lit(":"), pl.col("column").replace_strict(self.paths)
                    ).alias("reason"),
                )
                .group_by("row")
                .agg(pl.col("reason").alias("value_reasons"))
            )
        return pl.DataFrame(schema={"row": pl.UInt32, "value_reasons": REASONS})

    def validate(self, chunk: LineChunk) -> ValidatedChunk:
        valid, rejected = self.validate_lazy(chunk)
        return ValidatedChunk(valid=valid.collect(), rejected=rejected)

    def validate_lazy(self, chunk: LineChunk) -> tuple[pl.LazyFrame, pl.DataFrame]:
        """Parse and check now; leave the valid rows' columns as a plan.

        A caller that reads only some of them (reconciliation needs `line_number` and the
        canonical text) selects those before collecting, and polars skips the typed columns.
        """
        parsed = self.parser.parse(self._con, chunk).with_row_index("row")
        value_reasons = self._value_reasons(parsed)
        # Reason lists are built for failing lines only; most lines of a feed are valid.
        failing = (pl.col("shape_reasons").list.len() > 0).fill_null(False) | pl.col("row").is_in(
            value_reasons["row"].implode()
        )
        overlong = _overlong_lines(chunk)
        if overlong is not None:
            # Only the head of such a line was read: whatever it parsed as, it is rejected.
            failing = failing | pl.col("line_number").is_in(overlong.implode())
        # One select: the typed columns and the canonical rendering both read the checked text.
        valid = (
            parsed.lazy()
            .filter(~failing)
            .select(
                "line_number",
                "raw",
                *self.contract.typed_columns,
                self.contract.canonical.alias(CANONICAL_COLUMN),
            )
        )
        reasons = pl.concat_list(
            pl.col("shape_reasons").fill_null(pl.lit([], REASONS)),
            pl.col("value_reasons").fill_null(pl.lit([], REASONS)),
        )
        if overlong is not None:
            reasons = (
                pl.when(pl.col("line_number").is_in(overlong.implode()))
                .then(pl.lit([LINE_TOO_LONG], REASONS))
                .otherwise(reasons)
            )
        rejected = (
            parsed.filter(failing)
            .join(value_reasons, on="row", how="left")
            .select("line_number", pl.col("raw").alias("raw_line"), reasons.alias("reasons"))
        )
        return valid, rejected


def _overlong_lines(chunk: LineChunk) -> pl.Series | None:
    """Numbers of the chunk's lines that were cut at the reader's limit, or None."""
    if chunk.overlong is None:
        return None
    numbers = pl.Series(chunk.line_numbers())
    return numbers.filter(pl.Series(chunk.overlong))
