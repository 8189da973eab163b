"""The API's snapshot reader follows `current.duckdb` while a publisher keeps swapping it."""

from __future__ import annotations

from pathlib import Path

import pytest

from event_platform.api.snapshot import SnapshotReader, SnapshotUnavailableError
from event_platform.store.publication import publish_snapshot
from event_platform_tests.unit.test_api import build_warehouse


@pytest.fixture
def published(tmp_path: Path) -> Path:
    warehouse = tmp_path / "warehouse.duckdb"
    build_warehouse(warehouse)
    folder = tmp_path / "published"
    for _ in range(3):  # three publications: the first one has been pruned by now
        publish_snapshot(warehouse, folder)
    return folder


def test_follows_the_link_when_it_moves_twice_while_opening(published, monkeypatch):
    """The link resolves to two pruned snapshots in a row (two swaps mid-request), then lands."""
    reader = SnapshotReader(published / "current.duckdb")
    real = reader._resolve
    stale = iter(
        [str(published / "snapshot-gone-1.duckdb"), str(published / "snapshot-gone-2.duckdb")]
    )

    def racing_resolve() -> str:
        target = next(stale, None)
        if target is None:
            return real()
        raise SnapshotUnavailableError(f"{target} was pruned", target)

    monkeypatch.setattr(reader, "_resolve", racing_resolve)
    with reader.cursor() as cur:
        assert cur.execute("SELECT count(*) FROM events").fetchone()[0] > 0
    assert reader.target == real()


def test_a_snapshot_that_cannot_be_opened_is_unavailable_not_retried_forever(tmp_path):
    folder = tmp_path / "published"
    folder.mkdir()
    (folder / "snapshot-broken.duckdb").write_bytes(b"not a database")
    (folder / "current.duckdb").symlink_to("snapshot-broken.duckdb")
    reader = SnapshotReader(folder / "current.duckdb")
    with pytest.raises(SnapshotUnavailableError, match="cannot open") as raised, reader.cursor():
        pass
    # What a client is told: what to do, and no server path.
    assert "publish-snapshot" in raised.value.detail
    assert str(tmp_path) not in raised.value.detail


def test_no_snapshot_yet_is_unavailable(tmp_path):
    reader = SnapshotReader(tmp_path / "current.duckdb")
    with pytest.raises(SnapshotUnavailableError, match="no snapshot") as raised, reader.cursor():
        pass
    assert raised.value.detail.startswith("no snapshot has been published yet: run ")
    assert reader.published_name() is None
