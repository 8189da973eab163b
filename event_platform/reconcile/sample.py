"""The independent sample: lines re-derived by a second implementation of the contract.

The ledger check (`ledger.py`) proves that every line of the file sits in one stored row with the
line's digest, without parsing anything; whether each row holds the right verdict, reasons and
values is checked here, on a sample, by `independent.py`, which shares no code with the
production path. So is the reading: the sampled lines' bytes are found by plain Python file
reading (newlines counted block by block), not by `ingest/lines.py`.

The sample is `size` lines drawn with Python's `random.Random(seed).sample` from the file's line
numbers (the whole file when it has no more lines), plus the lines the ledger check flagged, up to
`size` of them, lowest first. A line the ledger check flagged is already counted there: only the
disagreements on other lines count here.
"""

from __future__ import annotations

import bisect
import random
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from event_platform.contract import StreamContract
from event_platform.reconcile.independent import Derived, rederive
from event_platform.reconcile.report import SAMPLE_SIZE
from event_platform.settings import DEFAULT_RECONCILE_SAMPLE_LINES
from event_platform.store.tables import DUPLICATE_REASON, EVENTS

DEFAULT_SAMPLE_LINES = DEFAULT_RECONCILE_SAMPLE_LINES

UTF8_BOM = b"\xef\xbb\xbf"
# Small reads: a read that holds a sampled line is split only as far as its last sampled line,
# so a sample of a big file creates few Python objects. Newlines are counted in every read.
READ_BYTES = 32 * 1024

# The sampled lines' stored rows, in both tables, with everything the sample compares.
_STORED = """
SELECT line_number, 'event' AS place, event_hash, NULL::BLOB AS raw_line,
       NULL::VARCHAR[] AS reasons, {values}
FROM main.events
WHERE source_file = $source_file AND rowid BETWEEN $events_from AND $events_to
  AND line_number IN (SELECT line_number FROM sampled)
UNION ALL
SELECT line_number, CASE WHEN reasons = [$duplicate] THEN 'duplicate' ELSE 'rejected' END,
       event_hash, raw_line, reasons, {nulls}
FROM main.rejected_events
WHERE source_file = $source_file AND rowid BETWEEN $rejected_from AND $rejected_to
  AND line_number IN (SELECT line_number FROM sampled)
"""


@dataclass
class SampleResult:
    seed: int
    lines: int  # distinct lines re-derived: the draw and the flagged lines
    mismatched: int  # lines whose stored rows disagree, the ledger's flagged lines left out
    samples: list[int] = field(default_factory=list)


def new_seed() -> int:
    """A fresh seed for a run that names none; recorded in the report to draw the same again."""
    return secrets.randbits(62)


def draw(lines_total: int, size: int, seed: int) -> list[int]:
    """The drawn line numbers, ascending: the whole file when it has at most `size` lines."""
    if lines_total <= size:
        return list(range(1, lines_total + 1))
    # Reproducible from the seed, not secret: Python's Mersenne Twister, as documented.
    return sorted(random.Random(seed).sample(range(1, lines_total + 1), size))  # noqa: S311


def read_lines(path: Path, numbers: Iterable[int], max_line_bytes: int) -> dict[int, bytes]:
    """The raw bytes of the numbered lines: without their `\\n`, the file's first line without a
    UTF-8 byte-order mark, a line longer than `max_line_bytes` cut to `max_line_bytes + 1` bytes
    (enough to know it is too long). Memory holds one read and the wanted lines."""
    targets = sorted(set(numbers))
    found: dict[int, bytes] = {}
    keep = max_line_bytes + 1
    at = 0  # index of the next wanted line in `targets`
    line = 1  # the number of the line the next byte belongs to
    head = b""  # the start of line `line`, when it is wanted
    open_line = False  # whether line `line` has any byte yet
    first = True
    with path.open("rb") as handle:
        while at < len(targets):
            block = handle.read(READ_BYTES)
            if not block:
                break
            if first:
                first = False
                block = block.removeprefix(UTF8_BOM)
                if not block:  # the mark was the whole read: the file may go on
                    continue
            wanted = targets[at]
            # Counted as the bytes a deletion removes: CPython finds a single byte with memchr,
            # where `bytes.count` tests every byte, at half the speed.
            ends = len(block) - len(block.replace(b"\n", b""))
            if not ends:
                if wanted == line and len(head) < keep:
                    head = (head + block)[:keep]
                open_line = True
                continue
            last = line + ends - 1  # the last line that ends in this block
            if wanted <= last:
                # Split only as far as the block's last wanted line.
                through = bisect.bisect_right(targets, last, at)
                pieces = block.split(b"\n", targets[through - 1] - line + 1)
                for number in targets[at:through]:
                    index = number - line
                    text = head + pieces[0] if index == 0 else pieces[index]
                    found[number] = text[:keep]
                at = through
            tail = block[block.rfind(b"\n") + 1 :]
            line = last + 1
            open_line = bool(tail)
            head = tail[:keep] if at < len(targets) and targets[at] == line else b""
    # The last line counts even without a final newline.
    if at < len(targets) and targets[at] == line and open_line:
        found[line] = head
    return found


def check_sample(
    path: Path,
    con: duckdb.DuckDBPyConnection,
    partition: dict[str, object],
    *,
    lines_total: int,
    size: int,
    seed: int,
    flagged_table: str,
    contract: StreamContract,
    allowed_event_types: frozenset[int],
    max_line_bytes: int,
) -> SampleResult:
    """Re-derive the sample and compare it with the stored rows; run inside the reconciling
    transaction, after the ledger check has filled `flagged_table` (line_number, verdict)."""
    drawn = draw(lines_total, size, seed) if size else []
    flagged = [
        line
        for (line,) in con.execute(
            f"SELECT DISTINCT line_number FROM {flagged_table} ORDER BY line_number LIMIT $n",
            {"n": size},
        ).fetchall()
    ]
    numbers = sorted(set(drawn) | set(flagged))
    if not numbers:
        return SampleResult(seed=seed, lines=0, mismatched=0)
    raw = read_lines(path, numbers, max_line_bytes)
    stored = _stored_rows(con, partition, contract, numbers)
    already = set(flagged)
    wrong = []
    for number in numbers:
        line = raw.get(number)
        derived = (
            rederive(number, line, allowed_event_types, max_line_bytes)
            if line is not None
            else None
        )
        if _disagrees(derived, line, stored.get(number, []), max_line_bytes):
            wrong.append(number)
    counted = [number for number in wrong if number not in already]
    return SampleResult(
        seed=seed, lines=len(numbers), mismatched=len(counted), samples=counted[:SAMPLE_SIZE]
    )


def _value_columns(contract: StreamContract) -> list[str]:
    columns = [f.name for f in contract.scalar_fields]
    unknown = [name for name in columns if name not in EVENTS.column_names]
    if unknown:
        raise RuntimeError(f"contract {contract.name} names columns events lacks: {unknown}")
    return columns


def _stored_rows(
    con: duckdb.DuckDBPyConnection,
    partition: dict[str, object],
    contract: StreamContract,
    numbers: list[int],
) -> dict[int, list[dict[str, object]]]:
    columns = _value_columns(contract)
    sql = _STORED.format(
        values=", ".join(columns), nulls=", ".join(f"NULL AS {name}" for name in columns)
    )
    sampled = pa.table({"line_number": pa.array(numbers, pa.int64())})  # noqa: F841
    params = {
        name: partition[name]
        for name in ("source_file", "events_from", "events_to", "rejected_from", "rejected_to")
    }
    cursor = con.execute(sql, params | {"duplicate": DUPLICATE_REASON})
    names = [description[0] for description in cursor.description]
    rows: dict[int, list[dict[str, object]]] = {}
    for values in cursor.fetchall():
        row = dict(zip(names, values, strict=True))
        rows.setdefault(row["line_number"], []).append(row)
    return rows


def _disagrees(
    derived: Derived | None,
    raw: bytes | None,
    rows: list[dict[str, object]],
    max_line_bytes: int,
) -> bool:
    """Whether the one stored row of a line says other than the independent derivation."""
    if derived is None or raw is None or len(rows) != 1:
        return True
    [row] = rows
    if derived.valid:
        if row["event_hash"] != derived.event_hash:
            return True
        if row["place"] == "event":
            values = derived.values or {}
            return any(row.get(name, _ABSENT) != value for name, value in values.items()) or any(
                name not in values for name in row if name not in _BOOKKEEPING
            )
        return row["place"] != "duplicate" or row["raw_line"] != raw[:max_line_bytes]
    return (
        row["place"] != "rejected"
        or sorted(row["reasons"] or []) != sorted(derived.reasons)
        or row["raw_line"] != raw[:max_line_bytes]
    )


_ABSENT = object()
_BOOKKEEPING = frozenset({"line_number", "place", "event_hash", "raw_line", "reasons"})
