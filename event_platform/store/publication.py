"""Publish what the API may serve as an immutable DuckDB snapshot, separate from the warehouse.

Why a snapshot rather than serving the warehouse directly: DuckDB lets one process hold a file
for writing and then blocks every other process, read-only opens included. An API holding the
warehouse open would make ingestion runs fail their lock retries, and a long ingestion run would
make the API time out. So publication opens the warehouse read-only for the few seconds a copy
takes, writes a NEW file `snapshot-<UTC timestamp>-<n>.duckdb`, and swaps the symlink
`current.duckdb` to it with `os.replace` (atomic on POSIX). Readers only ever open snapshots,
read-only; a snapshot is never written after it is published, so readers never block anyone.

What is published: events of files whose stored version (the ingestion run and file digest in
`ingestions`) has a passing latest reconciliation report (a file whose report failed, or whose
stored version was never reconciled, is not served), every reconciliation report (so
the API can say why a file is missing), the whole error bucket `rejected_events` (rejections are
facts about the input, useful precisely when reconciliation failed), and small derived tables
(`daily_stats`, `rejection_reasons`, `snapshot_info`) so the API and `/metrics` never aggregate
millions of rows per request. `events` is written sorted by (event_time, event_hash): DuckDB's
zone maps then let keyset pagination skip row groups, and `event_times_by_hash` (hashes sorted,
with their event_time) serves point look-ups the same way, where an in-memory ART index would
outgrow the memory cap. Row groups are 16,384 rows instead of DuckDB's 122,880: a page reads one row
group, and on 10M rows the smaller groups cut a page's query time by about a quarter
(`benchmarks/api_bench.py`).

Retention: the new snapshot and the one before it are kept (a server that resolved the link just
before the swap can still open the previous one); older ones are deleted. Open connections keep
deleted files readable on POSIX, so deleting never breaks a request in flight.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from event_platform.settings import DEFAULT_DUCKDB_MEMORY_LIMIT
from event_platform.store.connection import (
    LOCK_WAIT_SECONDS,
    WarehouseError,
    attach,
    open_database,
)
from event_platform.store.tables import (
    DUPLICATE_REASON,
    EVENTS,
    RECONCILIATION_REPORTS,
    REJECTED_EVENTS,
    SPECS,
)

logger = logging.getLogger(__name__)

CURRENT_NAME = "current.duckdb"
SNAPSHOT_ROW_GROUP_ROWS = 16_384
SNAPSHOT_PATTERN = re.compile(r"^snapshot-(\d{8}T\d{6}\d{6}Z)-(\d+)\.duckdb$")


@dataclass(frozen=True)
class PublishResult:
    """What one publication produced; the Dagster asset turns it into metadata."""

    snapshot: Path
    events: int
    rejected: int
    files_published: int
    files_failed: int
    seconds: float
    removed: list[Path] = field(default_factory=list)


def snapshot_sequence(path: Path) -> int | None:
    """The `<n>` of a snapshot file name, or None for any other file."""
    match = SNAPSHOT_PATTERN.match(path.name)
    return int(match.group(2)) if match else None


def _snapshots(published_dir: Path) -> list[tuple[int, Path]]:
    found = []
    for path in published_dir.glob("snapshot-*.duckdb"):
        sequence = snapshot_sequence(path)
        if sequence is not None:
            found.append((sequence, path))
    return sorted(found)


def _attach_warehouse(con: duckdb.DuckDBPyConnection, warehouse: Path, wait_seconds: float) -> None:
    """Attach the warehouse read-only, waiting while an ingestion run holds its lock.

    Nothing ingested yet (no file): empty tables are published rather than a failure, so /ready
    turns green.
    """
    attach(con, warehouse, "wh", read_only=True, wait_seconds=wait_seconds)
    present = {
        row[0]
        for row in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'wh' "
            "AND schema_name = 'main'"
        ).fetchall()
    }
    missing = [table for table in SPECS if table not in present]
    if missing:
        con.execute("DETACH wh")
        raise WarehouseError(
            f"the warehouse {warehouse} lacks tables {missing}; run an ingestion first"
        )


_COPY_STATEMENTS = (
    # Latest report per file; only files whose latest report passed are served.
    f"""CREATE TABLE snap.main.reconciliation_reports AS
        SELECT {RECONCILIATION_REPORTS.column_list(published=True)}
        FROM wh.main.reconciliation_reports
        ORDER BY source_file, checked_at""",
    # A file is served when the version stored now (its ingestion run and file digest) has a
    # passing latest reconciliation: a newer version stored but not yet reconciled is not.
    """CREATE TABLE snap.main.published_files AS
        SELECT i.source_file, i.file_sha256, r.checked_at, r.run_id, i.run_id AS ingest_run_id
        FROM wh.main.ingestions i
        JOIN (SELECT * FROM snap.main.reconciliation_reports
              QUALIFY row_number() OVER (
                  PARTITION BY source_file, ingest_run_id ORDER BY checked_at DESC) = 1) r
          ON r.source_file = i.source_file AND r.ingest_run_id = i.run_id
             AND r.file_sha256 = i.file_sha256
        WHERE r.passed""",
    f"""CREATE TABLE snap.main.events AS
        SELECT {EVENTS.column_list("e", published=True)} FROM wh.main.events e
        SEMI JOIN snap.main.published_files p
            ON e.source_file = p.source_file AND e.run_id = p.ingest_run_id
        ORDER BY e.event_time, e.event_hash""",
    f"""CREATE TABLE snap.main.rejected_events AS
        SELECT {REJECTED_EVENTS.column_list(published=True)} FROM wh.main.rejected_events
        ORDER BY source_file, line_number""",
)

_DERIVED_STATEMENTS = (
    """CREATE TABLE snap.main.daily_stats AS
        SELECT processing_date AS day, event_type, count(*) AS events
        FROM snap.main.events GROUP BY ALL ORDER BY ALL""",
    """CREATE TABLE snap.main.rejection_reasons AS
        SELECT source_file, reason, count(*) AS lines
        FROM (SELECT source_file, unnest(list_distinct(reasons)) AS reason
              FROM snap.main.rejected_events)
        GROUP BY ALL ORDER BY ALL""",
    # Point look-ups by hash: the hashes sorted, so zone maps find a hash's row group, and
    # each with its event_time, by which `events` is sorted. An ART index does the same but
    # is built in memory, which the memory cap does not allow for millions of events.
    """CREATE TABLE snap.main.event_times_by_hash AS
        SELECT event_hash, event_time FROM snap.main.events ORDER BY event_hash""",
)


def _reason_views(con: duckdb.DuckDBPyConnection) -> None:
    """Per-file reason counts as a caller without `pii` may see them, and per reason class.

    The rule lives in `event_platform.api.privacy`; it is applied once per distinct reason here
    (not per line), and lines are counted once per shown reason: a line with two unexpected keys
    is one `unexpected_field:***` line, not two.
    """
    import polars as pl

    from event_platform.contract.reasons import disclosed_reason, reason_class

    reasons = [
        reason
        for (reason,) in con.execute(
            "SELECT DISTINCT reason FROM snap.main.rejection_reasons"
        ).fetchall()
    ]
    reason_map = pl.DataFrame(  # noqa: F841 (read by DuckDB's replacement scan below)
        {
            "reason": reasons,
            "shown": [disclosed_reason(reason) for reason in reasons],
            "reason_class": [reason_class(reason) for reason in reasons],
        },
        schema={"reason": pl.String, "shown": pl.String, "reason_class": pl.String},
    )
    lines_per_reason = """SELECT source_file, line_number, unnest(reasons) AS reason
                          FROM snap.main.rejected_events"""
    con.execute(
        f"""CREATE TABLE snap.main.rejection_reasons_masked AS
            SELECT l.source_file, m.shown AS reason, count(DISTINCT l.line_number) AS lines
            FROM ({lines_per_reason}) l JOIN reason_map m USING (reason)
            GROUP BY ALL ORDER BY ALL"""
    )
    con.execute(
        f"""CREATE TABLE snap.main.rejection_reason_classes AS
            SELECT l.source_file, m.reason_class, count(DISTINCT l.line_number) AS lines
            FROM ({lines_per_reason}) l JOIN reason_map m USING (reason)
            GROUP BY ALL ORDER BY ALL"""
    )


def _build(con: duckdb.DuckDBPyConnection, warehouse: Path, wait_seconds: float) -> None:
    _attach_warehouse(con, warehouse, wait_seconds)
    try:
        # One transaction: every table reflects the same warehouse state.
        con.execute("BEGIN")
        for statement in _COPY_STATEMENTS:
            con.execute(statement)
        con.execute("COMMIT")
    finally:
        # Release the warehouse before the derived tables and the index are built.
        con.execute("DETACH wh")
    for statement in _DERIVED_STATEMENTS:
        con.execute(statement)
    _reason_views(con)


def publish_snapshot(
    warehouse: Path,
    published_dir: Path,
    *,
    wait_seconds: float = LOCK_WAIT_SECONDS,
    now: datetime | None = None,
    memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT,
) -> PublishResult:
    """Copy reconciled data into a new snapshot, point `current.duckdb` at it, prune old ones.

    The warehouse is attached read-only only while the four copy statements run.
    """
    started = time.monotonic()
    warehouse = Path(warehouse)
    published_dir = Path(published_dir)
    published_dir.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    existing = _snapshots(published_dir)
    sequence = (existing[-1][0] + 1) if existing else 1
    name = f"snapshot-{stamp}-{sequence}.duckdb"
    final = published_dir / name
    building = published_dir / f".{name}.{os.getpid()}.building"
    building.unlink(missing_ok=True)

    # Capped like every other connection, spilling beside the snapshot: copying and sorting a
    # large warehouse's events would otherwise take DuckDB's default of 80% of the machine.
    spill = published_dir / f".{name}.{os.getpid()}.spill"
    con = open_database(
        ":memory:",
        read_only=False,
        memory_limit=memory_limit,
        config={"temp_directory": str(spill)},
        what="the snapshot's working database",
    )
    try:
        con.execute(f"ATTACH ? AS snap (ROW_GROUP_SIZE {SNAPSHOT_ROW_GROUP_ROWS})", [str(building)])
        _build(con, warehouse, wait_seconds)
        events, rejected, published, failed = _record_info(con, warehouse, now)
        con.execute("DETACH snap")
    except BaseException:
        building.unlink(missing_ok=True)
        Path(f"{building}.wal").unlink(missing_ok=True)
        raise
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    os.replace(building, final)
    _point_current(published_dir, name)
    removed = _prune(published_dir, keep_from=_previous_sequence(existing, sequence))
    seconds = time.monotonic() - started
    logger.info(
        "published %s: %d events from %d files (%d files failed reconciliation) in %.2fs",
        name,
        events,
        published,
        failed,
        seconds,
    )
    return PublishResult(final, events, rejected, published, failed, seconds, removed)


def _record_info(
    con: duckdb.DuckDBPyConnection, warehouse: Path, now: datetime | None
) -> tuple[int, int, int, int]:
    """Write `snapshot_info`, what `/health` and `/metrics` say of the snapshot, and return its
    counts: events, rejected rows, files published and files that failed reconciliation."""
    (events,) = con.execute("SELECT count(*) FROM snap.main.events").fetchone()
    rejected, failed, published = con.execute(
        """SELECT
            (SELECT count(*) FROM snap.main.rejected_events),
            (SELECT count(*) FROM (
                SELECT passed FROM snap.main.reconciliation_reports
                QUALIFY row_number() OVER (
                    PARTITION BY source_file ORDER BY checked_at DESC) = 1)
             WHERE NOT passed),
            (SELECT count(*) FROM snap.main.published_files)"""
    ).fetchone()
    last_ingest = con.execute(
        "SELECT max(checked_at) FROM snap.main.reconciliation_reports WHERE passed"
    ).fetchone()[0]
    con.execute(
        """CREATE TABLE snap.main.snapshot_info AS SELECT
            ?::TIMESTAMP AS published_at, ?::VARCHAR AS warehouse, ?::BIGINT AS events,
            ?::BIGINT AS rejected, ?::BIGINT AS files_published, ?::BIGINT AS files_failed,
            ?::TIMESTAMP AS last_successful_ingest, ?::VARCHAR AS duplicate_reason""",
        [
            (now or datetime.now(UTC)).replace(tzinfo=None),
            str(warehouse),
            events,
            rejected,
            published,
            failed,
            last_ingest,
            DUPLICATE_REASON,
        ],
    )
    return events, rejected, published, failed


def _point_current(published_dir: Path, name: str) -> None:
    """Swap `current.duckdb` atomically: a reader sees the old target or the new, never none."""
    temporary = published_dir / f".{CURRENT_NAME}.{os.getpid()}.tmp"
    temporary.unlink(missing_ok=True)
    os.symlink(name, temporary)  # relative, so the folder can be moved or mounted elsewhere
    os.replace(temporary, published_dir / CURRENT_NAME)


def _previous_sequence(existing: list[tuple[int, Path]], new: int) -> int:
    older = [sequence for sequence, _ in existing if sequence < new]
    return older[-1] if older else new


def _prune(published_dir: Path, *, keep_from: int) -> list[Path]:
    removed = []
    for sequence, path in _snapshots(published_dir):
        if sequence < keep_from:
            path.unlink(missing_ok=True)
            Path(f"{path}.wal").unlink(missing_ok=True)
            removed.append(path)
    return removed


def current_snapshot(published_dir: Path) -> Path | None:
    """The snapshot `current.duckdb` points at, or None before the first publication."""
    link = published_dir / CURRENT_NAME
    try:
        return link.resolve(strict=True)
    except (FileNotFoundError, RuntimeError):
        return None
