"""Slices of the 64-bit key space (`hash_key`), for statements that join many event hashes.

DuckDB sizes a hash join's directory for its whole build side and cannot spill that directory:
at 10M rows it asked for one 256 MB block, the whole of a connection's default cap. Keys are
the first 64 bits of a sha256, so equal ranges of the key space hold about equal shares of any
set of events; a statement run once per range holds only that share.
"""

from __future__ import annotations

import itertools

# Rows per slice that a join may hold: a few tens of MB of directory and hashes at most.
ROWS_PER_SLICE = 250_000


def key_slices(rows: int, per_slice: int | None = None) -> list[tuple[int, int]]:
    """Inclusive `(low, high)` key ranges covering every key, enough that each holds about
    `per_slice` (default `ROWS_PER_SLICE`) of `rows` uniformly spread keys; one range for a
    small set."""
    count = max(1, -(-rows // (per_slice or ROWS_PER_SLICE)))
    bounds = [index * 2**64 // count for index in range(count + 1)]
    return [(low, high - 1) for low, high in itertools.pairwise(bounds)]
