"""Reading a file's lines again by number (`lines_again`), as the writer does for duplicates."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from event_platform.lines import lines_again


def _file(tmp_path: Path, count: int) -> tuple[Path, str]:
    path = tmp_path / "lines.jsonl"
    path.write_bytes(b"".join(f"line {n:03d}\r\n".encode() for n in range(1, count + 1)))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _batches(*numbers: list[int]) -> list[pl.Series]:
    return [pl.Series(batch, dtype=pl.Int64) for batch in numbers]


def test_batches_of_any_extent_come_back_as_their_lines_in_order(tmp_path: Path) -> None:
    """Batches may be empty, fall inside one chunk or span several (chunks of ~5 lines here)."""
    path, sha = _file(tmp_path, 60)
    wanted = _batches([1, 2], [], [5, 6, 7, 8, 9, 10, 11, 12, 13], [31], [], [59, 60])
    frames = list(lines_again(path, wanted, sha, chunk_bytes=50))
    assert len(frames) > 1
    read = pl.concat(frames)
    expected = [1, 2, *range(5, 14), 31, 59, 60]
    assert read["line_number"].to_list() == expected
    # The text as the parser keeps it: the trailing carriage return is gone.
    assert read["line"].to_list() == [f"line {n:03d}" for n in expected]


def test_a_batch_is_asked_for_only_when_the_read_reaches_it(tmp_path: Path) -> None:
    """The writer fetches (and deletes) one range of numbers per batch: asking for all of them
    up front would hold every number of the file at once."""
    path, sha = _file(tmp_path, 60)
    asked: list[int] = []
    yielded: list[int] = []

    def ranges() -> Iterator[pl.Series]:
        for low in (1, 21, 41):
            asked.append(low)
            yield pl.Series([low, low + 1], dtype=pl.Int64)

    for frame in lines_again(path, ranges(), sha, chunk_bytes=50):
        yielded.append(frame["line_number"][0])
        # Nothing beyond the batch after the lines read so far was asked for.
        assert asked[-1] <= yielded[-1] + 20
    assert asked == [1, 21, 41] and yielded == [1, 21, 41]


def test_numbers_that_do_not_ascend_are_refused(tmp_path: Path) -> None:
    path, sha = _file(tmp_path, 60)
    with pytest.raises(ValueError, match="not ascending"):
        list(lines_again(path, _batches([40], [3]), sha, chunk_bytes=50))
