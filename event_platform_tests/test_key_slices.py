"""Key slices cover the 64-bit key space exactly once, in about equal shares."""

from __future__ import annotations

import itertools

import pytest

from event_platform.store.key_slices import key_slices


@pytest.mark.parametrize(("rows", "per_slice", "expected"), [(0, 10, 1), (10, 10, 1), (11, 10, 2)])
def test_enough_slices_for_the_rows(rows: int, per_slice: int, expected: int) -> None:
    assert len(key_slices(rows, per_slice)) == expected


def test_slices_cover_every_key_once_in_order() -> None:
    slices = key_slices(7_000_000)
    assert slices[0][0] == 0 and slices[-1][1] == 2**64 - 1
    for (_, high), (low, _) in itertools.pairwise(slices):
        assert low == high + 1
    widths = {high - low for low, high in slices}
    assert max(widths) - min(widths) <= 1
