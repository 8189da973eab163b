"""Keeping an Iceberg warehouse small: snapshot expiry and orphan-file removal.

Every partition replace adds a snapshot to four tables, and an old snapshot keeps its data
files alive; expiring snapshots past a retention lets their files go. Files no snapshot
references (a worker killed mid-write, a commit that lost its race, an expired snapshot's
files) are orphans; pyiceberg has no orphan removal, so it is done here for local warehouses:
a file is removed only when no remaining snapshot references it and it is older than a grace
period, so that the files of a commit in flight are never taken.

Small files (one or more per partition and table) are not compacted here: pyiceberg 0.12
cannot rewrite data files in place. In production, Spark's `rewrite_data_files` procedure or
BigQuery's managed Iceberg tables compact them; with partitions per file they stay few.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from event_platform.store.iceberg.tables import TABLES

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

DEFAULT_RETENTION = timedelta(days=7)
DEFAULT_ORPHAN_GRACE = timedelta(hours=1)


@dataclass
class MaintenanceResult:
    expired_snapshots: dict[str, int] = field(default_factory=dict)
    removed_files: dict[str, int] = field(default_factory=dict)


def expire_snapshots(table: Table, older_than: datetime) -> int:
    """Expire the snapshots committed before `older_than`, except the current one."""
    current = table.current_snapshot()
    old = [
        snapshot.snapshot_id
        for snapshot in table.metadata.snapshots
        if snapshot.timestamp_ms < older_than.timestamp() * 1000
        and (current is None or snapshot.snapshot_id != current.snapshot_id)
    ]
    if old:
        table.maintenance.expire_snapshots().by_ids(old).commit()
    return len(old)


def _local(uri: str) -> Path:
    if uri.startswith("file://"):
        return Path(uri.removeprefix("file://"))
    if uri.startswith("/"):
        return Path(uri)
    raise ValueError(f"orphan removal handles local warehouses only, not {uri}")


def referenced_files(table: Table) -> set[Path]:
    """Every file a remaining snapshot or the table's metadata history names."""
    metadata = table.metadata
    files = {_local(path) for path in table.inspect.all_files()["file_path"].to_pylist()}
    files |= {_local(path) for path in table.inspect.all_manifests()["path"].to_pylist()}
    files |= {_local(snapshot.manifest_list) for snapshot in metadata.snapshots}
    files |= {_local(entry.metadata_file) for entry in metadata.metadata_log}
    files.add(_local(table.metadata_location))
    return files


def remove_orphan_files(table: Table, older_than: datetime) -> int:
    """Remove files under the table's folder that nothing references, older than `older_than`."""
    keep = referenced_files(table)
    cutoff = older_than.timestamp()
    removed = 0
    for path in _local(table.location()).rglob("*"):
        if path.is_file() and path not in keep and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def maintain(
    catalog: Catalog,
    *,
    retention: timedelta = DEFAULT_RETENTION,
    orphan_grace: timedelta = DEFAULT_ORPHAN_GRACE,
    now: datetime | None = None,
) -> MaintenanceResult:
    """Expire old snapshots, then remove orphans, table by table."""
    now = now or datetime.now(UTC)
    result = MaintenanceResult()
    for name, spec in TABLES.items():
        table = catalog.load_table(spec.identifier)
        result.expired_snapshots[name] = expire_snapshots(table, now - retention)
        table = catalog.load_table(spec.identifier)
        result.removed_files[name] = remove_orphan_files(table, now - orphan_grace)
    return result
