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


def _filesystem(table: Table):  # -> (fsspec.AbstractFileSystem, str)
    """The table location's filesystem, and the location as that filesystem names paths."""
    import fsspec

    return fsspec.core.url_to_fs(table.location())


def referenced_files(table: Table) -> set[str]:
    """Every file a remaining snapshot or the table's metadata history names, as the table's
    filesystem names it (a local path; `bucket/key` on GCS)."""
    fs, _ = _filesystem(table)
    metadata = table.metadata
    uris = set(table.inspect.all_files()["file_path"].to_pylist())
    uris |= set(table.inspect.all_manifests()["path"].to_pylist())
    uris |= {snapshot.manifest_list for snapshot in metadata.snapshots}
    uris |= {entry.metadata_file for entry in metadata.metadata_log}
    uris.add(table.metadata_location)
    return {fs._strip_protocol(uri) for uri in uris}


def remove_orphan_files(table: Table, older_than: datetime) -> int:
    """Remove files under the table's location that nothing references, last modified before
    `older_than`."""
    fs, root = _filesystem(table)
    keep = referenced_files(table)
    removed = 0
    for path in fs.find(root):
        if path in keep:
            continue
        modified = fs.modified(path)
        if modified.tzinfo is None:  # the local filesystem's times are naive UTC
            modified = modified.replace(tzinfo=UTC)
        if modified < older_than:
            fs.rm_file(path)
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
