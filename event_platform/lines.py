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

from event_platform.config import DEFAULT_CHUNK_BYTES

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
    """Consecutive lines of one file: `raw` holds them without their `\\n`."""

    first_line_number: int
    raw: pa.LargeBinaryArray

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


def read_line_chunks(
    path: Path, digest: FileDigest | None = None, chunk_bytes: int = DEFAULT_CHUNK_BYTES
) -> Iterator[LineChunk]:
    """Yield the file's lines in chunks of roughly `chunk_bytes`.

    A UTF-8 byte-order mark at the very start is dropped; the last line counts even without a
    final `\n`; an empty file has no lines. A line longer than `chunk_bytes` is still read whole
    (the block grows until it holds a newline). The file's sha256 is computed on a helper thread
    (hashlib releases the GIL), overlapping with whatever the consumer does with each chunk.

    Blocks are read into two buffers that take turns: one is hashed while the next is filled.
    `_split` copies the lines out, so a yielded chunk never points into a buffer. Fresh `bytes`
    per block, joined to the carried partial line, cost two new 16 MB allocations per chunk,
    each faulted in page by page by the kernel (docs/performance.md, "page faults").
    """
    digest = digest if digest is not None else FileDigest()
    next_line = 1
    buffers = [bytearray(), bytearray()]
    turn = 0
    carry = memoryview(b"")
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
            if at_end:
                # The rest is the last chunk, even when its last line has no final newline.
                if end > start:
                    raw = _split(view[start:end])
                    digest.lines += len(raw)
                    yield LineChunk(next_line, raw)
                break
            cut = buffers[turn].rfind(b"\n", start, end)
            if cut < 0:
                # No line ends in this block yet: keep all of it and read a larger one.
                carry = view[start:end]
                turn = 1 - turn
                continue
            carry = view[cut + 1 : end]
            raw = _split(view[start : cut + 1])
            digest.lines += len(raw)
            yield LineChunk(next_line, raw)
            next_line += len(raw)
            turn = 1 - turn
        if pending is not None:
            pending.result()
    digest.sha256 = digest._hasher.hexdigest()


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
) -> Iterator[pl.DataFrame]:
    """Read the file once more and yield the text of the wanted lines, chunk by chunk.

    The writer learns that some stored lines are duplicates of other files only after the whole
    file has gone past (see `store.writer`); their raw text, which `rejected_events` keeps, is
    fetched here rather than held for every line meanwhile. `wanted` yields the line numbers in
    batches, each ascending and after the one before; a batch is only asked for when the read
    reaches it, so a file of any size never has all of its numbers in memory at once (10M
    numbers held at once took 78 MB). The text is what the parser kept for a valid line: UTF-8,
    trailing `\\r` dropped. A file whose sha256 differs from the first pass raises
    `FileChangedError`, after the last chunk, so the caller's transaction rolls back.
    Each chunk finds its lines by binary search in the sorted numbers and takes them by
    position: a membership test against all of them in every chunk took twice as long (3.1 s
    against 1.4 s to re-read 4.9M lines, docs/performance.md).
    """
    batches = iter(wanted)
    pending = pl.Series("line_number", [], pl.Int64)
    last_asked = 0
    drained = False
    digest = FileDigest()
    for chunk in read_line_chunks(path, digest, chunk_bytes):
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
        try:
            text = chunk.raw.take((numbers - start).to_arrow()).cast(pa.large_string())
        except pa.ArrowInvalid:
            # These lines were valid UTF-8 on the first pass: the file changed under us.
            raise _changed(path, expected_sha256, "some lines are no longer UTF-8") from None
        yield pl.DataFrame({"line_number": numbers, "line": pl.from_arrow(text)}).with_columns(
            pl.col("line").str.strip_suffix("\r")
        )
    if digest.sha256 != expected_sha256:
        raise _changed(path, expected_sha256, f"sha256 now {digest.sha256[:12]}...")


def _changed(path: Path, expected_sha256: str, detail: str) -> FileChangedError:
    return FileChangedError(
        f"{path} changed while it was being ingested (sha256 was {expected_sha256[:12]}..., "
        f"{detail}); nothing was stored, ingest it again"
    )
