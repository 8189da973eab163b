"""Reading a file's lines: in chunks (`read_line_chunks`), and again by number (`lines_again`), as
the writer does for duplicates."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from itertools import accumulate
from pathlib import Path
from unittest import mock

import polars as pl
import pytest

from event_platform.ingest.lines import FileDigest, lines_again, read_line_chunks


def _file(tmp_path: Path, count: int) -> tuple[Path, str]:
    path = tmp_path / "lines.jsonl"
    path.write_bytes(b"".join(f"line {n:03d}\r\n".encode() for n in range(1, count + 1)))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _batches(*numbers: list[int]) -> list[pl.Series]:
    return [pl.Series(batch, dtype=pl.Int64) for batch in numbers]


@pytest.mark.parametrize("chunk_bytes", [7, 64, 1000, 1 << 20])
@pytest.mark.parametrize("ending", [b"", b"\n"], ids=["no-final-newline", "final-newline"])
def test_chunks_kept_together_hold_every_line_as_read(
    tmp_path: Path, chunk_bytes: int, ending: bytes
) -> None:
    """Chunks collected before any is used still hold their own lines, so none points into a
    read buffer that a later block reuses. Some lines are longer than the smallest blocks."""
    lines = [f"{n}:".encode() + b"x" * (n * 37 % 101) for n in range(1, 400)]
    lines[3] = b""
    path = tmp_path / "lines.jsonl"
    raw = b"\xef\xbb\xbf" + b"\n".join(lines) + ending
    path.write_bytes(raw)
    digest = FileDigest()
    chunks = list(read_line_chunks(path, digest, chunk_bytes=chunk_bytes))
    assert [line for chunk in chunks for line in chunk.raw.to_pylist()] == lines
    assert [chunk.first_line_number for chunk in chunks] == list(
        accumulate([1] + [len(chunk) for chunk in chunks[:-1]])
    )
    assert len(chunks) > 1 or chunk_bytes > len(raw)
    assert (digest.lines, digest.bytes_read) == (len(lines), len(raw))
    assert digest.sha256 == hashlib.sha256(raw).hexdigest()


def test_two_read_buffers_serve_the_whole_file(tmp_path: Path) -> None:
    """Blocks reuse two buffers whatever partial line each carries over; a new buffer for a
    block is fresh memory for the kernel to map and zero, every 16 MB."""
    lines = [b"x" * (n * 7919 % 300) for n in range(20_000)]
    path = tmp_path / "lines.jsonl"
    path.write_bytes(b"\n".join(lines))
    with mock.patch(
        "event_platform.ingest.lines.bytearray", side_effect=bytearray, create=True
    ) as new:
        chunks = list(read_line_chunks(path, chunk_bytes=64 * 1024))
    assert len(chunks) > 40
    assert [line for chunk in chunks for line in chunk.raw.to_pylist()] == lines
    sized = [call.args[0] for call in new.call_args_list if call.args and call.args[0]]
    assert len(sized) == 2


def test_batches_of_any_extent_come_back_as_their_lines_in_order(tmp_path: Path) -> None:
    """Batches may be empty, fall inside one chunk or span several (chunks of ~5 lines here)."""
    path, sha = _file(tmp_path, 60)
    wanted = _batches([1, 2], [], [5, 6, 7, 8, 9, 10, 11, 12, 13], [31], [], [59, 60])
    frames = list(lines_again(path, wanted, sha, chunk_bytes=50))
    assert len(frames) > 1
    read = pl.concat(frames)
    expected = [1, 2, *range(5, 14), 31, 59, 60]
    assert read["line_number"].to_list() == expected
    # The lines' exact bytes, each without its newline only.
    assert read["raw"].to_list() == [f"line {n:03d}\r".encode() for n in expected]


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
