"""`event_hash`: the sha256 (hex) of an event's canonical rendering.

The ingest path hashes in polars, with polars-hash's SHA-2 kernel over the contract's
`canonical` rendering of the checked text: cheaper than DuckDB's `sha256` over the same text
(docs/performance.md), and no column crosses into DuckDB and back. Reconciliation
hashes the rows read back from the store with `event_hash_sql` (DuckDB over `canonical_sql`,
which formats the typed values), a second implementation of the same definition, so a drift
between the two fails reconciliation loudly.
Both are stable across versions, unlike polars' own `Expr.hash`.

`line_digest` is the line ledger's digest of a line's raw bytes (see `reconcile/ledger.py`):
XXH64 with seed 0, as specified by the xxHash project and computed by polars-hash's `xxhash64`,
as an unsigned 64-bit integer. The bytes are the line as the reader holds it: without its `\n`,
with any `\r`, the file's first line without a UTF-8 byte-order mark, and a line longer than the
line limit as its first `max_line_bytes` bytes. A test pins it to the reference implementation.
"""

from __future__ import annotations

from typing import TypeVar

import polars as pl
import polars_hash  # noqa: F401 - registers the `chash` expression namespace

from event_platform.contract import StreamContract

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)

# The column in which validation hands over each valid line's canonical rendering.
CANONICAL_COLUMN = "canonical"
# Must equal `store.schema.hash_key_sql`, which fills the key index of an older warehouse.
HASH_KEY = pl.col("event_hash").str.slice(0, 16).str.to_integer(base=16, dtype=pl.UInt64)


def line_digest(raw: str = "raw") -> pl.Expr:
    """`line_digest` of the lines in the Binary column `raw`."""
    return pl.col(raw).nchash.xxhash64(seed=0).alias("line_digest")


def line_digests(raw: pl.Series) -> pl.Series:
    """The ledger digest of each line of `raw` (Binary), as `line_digest`."""
    return pl.DataFrame({"raw": raw}).select(line_digest()).to_series()


def event_hash_sql(contract: StreamContract) -> str:
    """SQL expression for the event hash over columns named as in the contract."""
    return f"sha256({contract.canonical_sql})"


def with_event_hash(valid: Frame) -> Frame:
    """Replace `canonical` with `event_hash`, its `hash_key`, and `first_in_chunk`, which the
    first line of each `hash_key` holds until `settle_first_in_chunk` decides on full hashes.

    The contract's `canonical` was rendered during validation, from the checked text, into
    `CANONICAL_COLUMN`. `valid` is in line order, so the first occurrence of a hash is its
    earliest line. Finding first occurrences of 8-byte keys costs a fraction of doing it on
    64-character strings, and a chunk whose keys are all distinct has distinct hashes.
    """
    return (
        valid.with_columns(pl.col(CANONICAL_COLUMN).chash.sha2_256().alias("event_hash"))
        .drop(CANONICAL_COLUMN)
        .with_columns(HASH_KEY.alias("hash_key"))
        .with_columns(pl.col("hash_key").is_first_distinct().alias("first_in_chunk"))
    )


def settle_first_in_chunk(valid: pl.DataFrame) -> pl.DataFrame:
    """`first_in_chunk` on full hashes: true where no earlier line of the chunk has the line's
    `event_hash`. Keys only nominate; a chunk where one repeats is decided again on its hashes."""
    if "first_in_chunk" not in valid.columns or valid["first_in_chunk"].all():
        return valid
    return valid.with_columns(pl.col("event_hash").is_first_distinct().alias("first_in_chunk"))
