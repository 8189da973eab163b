"""Bytes to numbered lines, in bounded chunks.

The file is read in blocks of `chunk_bytes`, cut at the last `\\n` of each block, and split into
lines by Arrow's `split_pattern` kernel, so no Python object is created per line and memory is
bounded by the block size whatever the file size. Lines stay raw bytes here: deciding UTF-8
validity is the parser's job, per line, so one bad byte rejects one line, not the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from event_platform.settings import DEFAULT_CHUNK_BYTES, DEFAULT_MAX_LINE_BYTES

UTF8_BOM = b"\xef\xbb\xbf"
# Spare room in each read buffer for the partial line carried over from the block before.
CARRY_ROOM = 1 << 20


@dataclass
class FileDigest:
    """What was read: filled in as chunks stream past, complete once the iterator is exhausted."""

    sha256: str = ""
    bytes_read: int = 0
    lines: int = 0
    _hasher: hashlib._Hash = field(default_factory=hashlib.sha256, repr=False)


@dataclass(frozen=True)
class LineChunk:
    """Consecutive lines of one file: `raw` holds them without their `\\n`.

    A line longer than the reader's `max_line_bytes` is held by its first `max_line_bytes`
    bytes and flagged in `overlong` (None when no line of the chunk is).
    """

    first_line_number: int
    raw: pa.LargeBinaryArray
    overlong: pa.BooleanArray | None = None

    def __len__(self) -> int:
        return len(self.raw)

    def line_numbers(self) -> pa.Int64Array:
        start = self.first_line_number
        return pl.int_range(start, start + len(self.raw), dtype=pl.Int64, eager=True).to_arrow()

    def table(self) -> pa.Table:
        return pa.table({"line_number": self.line_numbers(), "raw": self.raw})


def _split(block: bytes | memoryview) -> pa.LargeBinaryArray:
    buffer = pa.py_buffer(block)
    offsets = pa.array([0, len(block)], pa.int64())
    whole = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), 1, [None, offsets.buffers()[1], buffer]
    )
    pieces = pc.split_pattern(whole, pattern=b"\n").flatten()
    if bytes(block[-1:]) == b"\n":
        # "a\nb\n" splits into a, b and an empty tail that is not a line.
        pieces = pieces.slice(0, len(pieces) - 1)
    return pieces


def _chunk(first_line: int, raw: pa.LargeBinaryArray, max_line_bytes: int) -> LineChunk:
    """A chunk of split lines, with any line over `max_line_bytes` cut to it and flagged."""
    overlong = pc.greater(pc.binary_length(raw), max_line_bytes)
    if not pc.any(overlong).as_py():
        return LineChunk(first_line, raw)
    cut = pc.if_else(overlong, pc.binary_slice(raw, 0, max_line_bytes), raw)
    return LineChunk(first_line, cut, overlong)


def read_line_chunks(
    path: Path,
    digest: FileDigest | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[LineChunk]:
    """Yield the file's lines in chunks of roughly `chunk_bytes`.

    One loop on purpose: the reused buffer, the carried partial line and the overlong-line
    state are shared by every step, and helpers would pass all three back and forth per block.

    A UTF-8 byte-order mark at the very start is dropped; the last line counts even without a
    final `\n`; an empty file has no lines. A line longer than `max_line_bytes` is kept as its
    first `max_line_bytes` bytes and flagged (`LineChunk.overlong`); once a partial line
    outgrows that, the rest of it is read past without being held, so memory stays bounded by
    the block and line limits whatever the file holds. The file's sha256 is computed on a
    helper thread (hashlib releases the GIL), overlapping with whatever the consumer does.

    Blocks are read into two buffers that take turns: one is hashed while the next is filled.
    `_split` copies the lines out, so a yielded chunk never points into a buffer; fresh
    `bytes` per block would be faulted in page by page by the kernel every block.
    """
    digest = digest if digest is not None else FileDigest()
    next_line = 1
    buffers = [bytearray(), bytearray()]
    turn = 0
    carry = memoryview(b"")
    # The kept head of an overlong line whose end has not been read yet.
    skipping: bytes | None = None
    first = True
    pending: Future | None = None
    with path.open("rb") as handle, ThreadPoolExecutor(1, "sha256") as hasher:
        while True:
            size = len(carry) + chunk_bytes
            if len(buffers[turn]) < size:
                # Room for a longer carried line next time too: the carry differs every block,
                # and sizing to the byte reallocated (and zeroed) a buffer for nearly every one.
                buffers[turn] = bytearray(size + max(len(carry), CARRY_ROOM))
            view = memoryview(buffers[turn])
            view[: len(carry)] = carry
            filled = _read_into(handle, view[len(carry) : size])
            # Only the end of the file leaves the buffer short of a full block.
            at_end = filled < chunk_bytes
            if pending is not None:
                # The previous block's hash: its buffer is the one filled next time round.
                pending.result()
            block = view[len(carry) : len(carry) + filled]
            if filled:
                pending = hasher.submit(digest._hasher.update, block)
                digest.bytes_read += filled
            start = 0
            if first and filled:
                first = False
                if bytes(block[: len(UTF8_BOM)]) == UTF8_BOM:
                    start = len(UTF8_BOM)
            end = len(carry) + filled
            if skipping is not None:
                newline = buffers[turn].find(b"\n", 0, end)
                if newline < 0 and not at_end:
                    carry = memoryview(b"")
                    turn = 1 - turn
                    continue
                yield _overlong(next_line, skipping)
                digest.lines += 1
                next_line += 1
                skipping = None
                if newline < 0:
                    break
                start = newline + 1
            if at_end:
                # The rest is the last chunk, even when its last line has no final newline.
                if end > start:
                    chunk = _chunk(next_line, _split(view[start:end]), max_line_bytes)
                    digest.lines += len(chunk)
                    yield chunk
                break
            cut = buffers[turn].rfind(b"\n", start, end)
            if cut < 0:
                if end - start > max_line_bytes:
                    # Longer than any line may be: keep its head, read past the rest.
                    skipping = bytes(view[start : start + max_line_bytes])
                    carry = memoryview(b"")
                else:
                    # No line ends in this block yet: keep all of it and read a larger one.
                    carry = view[start:end]
                turn = 1 - turn
                continue
            carry = view[cut + 1 : end]
            chunk = _chunk(next_line, _split(view[start : cut + 1]), max_line_bytes)
            digest.lines += len(chunk)
            yield chunk
            next_line += len(chunk)
            turn = 1 - turn
        if pending is not None:
            pending.result()
    digest.sha256 = digest._hasher.hexdigest()


def _overlong(line_number: int, head: bytes) -> LineChunk:
    return LineChunk(line_number, pa.array([head], pa.large_binary()), pa.array([True], pa.bool_()))


def _read_into(handle: BinaryIO, view: memoryview) -> int:
    """Fill `view` from `handle` as far as the file goes; fewer bytes than asked means its end."""
    filled = 0
    while filled < len(view):
        count = handle.readinto(view[filled:])
        if not count:
            break
        filled += count
    return filled


class FileChangedError(RuntimeError):
    """The file's bytes changed while it was being ingested; the partition is left as it was."""


def lines_again(
    path: Path,
    wanted: Iterable[pl.Series],
    expected_sha256: str,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[pl.DataFrame]:
    """Read the file once more and yield the exact bytes of the wanted lines, chunk by chunk.

    The writer learns that some stored lines are duplicates of other files only after the whole
    file has gone past (see `store.writer`); their raw bytes, which `rejected_events` keeps, are
    fetched here rather than held for every line meanwhile. `wanted` yields the line numbers in
    batches, each ascending and after the one before; a batch is only asked for when the read
    reaches it, so a file of any size never has all of its numbers in memory at once. Frames
    hold `line_number` and `raw` (the line's bytes without its `\\n`). A file whose sha256
    differs from the first pass raises `FileChangedError` after the last chunk, so the caller's
    transaction rolls back. Each chunk finds its lines by binary search in the sorted numbers
    and takes them by position, rather than testing every number against the chunk.
    """
    batches = iter(wanted)
    pending = pl.Series("line_number", [], pl.Int64)
    last_asked = 0
    drained = False
    digest = FileDigest()
    for chunk in read_line_chunks(path, digest, chunk_bytes, max_line_bytes):
        start = chunk.first_line_number
        end = start + len(chunk)
        while not drained and (pending.is_empty() or pending[-1] < end):
            batch = next(batches, None)
            if batch is None:
                drained = True
            elif not batch.is_empty():
                if batch[0] <= last_asked or not batch.is_sorted():
                    raise ValueError(f"line numbers not ascending after line {last_asked}")
                last_asked = batch[-1]
                pending = pl.concat([pending, batch.cast(pl.Int64).alias("line_number")])
        here = pending.search_sorted(end, side="left")
        if here == 0:
            continue
        numbers, pending = pending.slice(0, here), pending.slice(here)
        raw = chunk.raw.take((numbers - start).to_arrow())
        yield pl.DataFrame({"line_number": numbers, "raw": pl.from_arrow(raw)})
    if digest.sha256 != expected_sha256:
        raise file_changed(path, expected_sha256, digest.sha256, "ingested")


def file_changed(path: Path, expected_sha256: str, sha256: str, doing: str) -> FileChangedError:
    """The error for a file whose bytes changed between two reads of one ingestion or
    reconciliation (`doing`: "ingested" or "reconciled"); the caller's transaction rolls back."""
    again = {"ingested": "nothing was stored, ingest it again"}.get(doing, "reconcile it again")
    return FileChangedError(
        f"{path} changed while it was being {doing} (sha256 was {expected_sha256[:12]}..., "
        f"now {sha256[:12]}...); {again}"
    )
