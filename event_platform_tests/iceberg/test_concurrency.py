"""Exactly one copy with many writers: worker processes ingest different files and the same
files at once, with events shared between files, into one Iceberg warehouse."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import duckdb
import pytest

from event_platform.generator import generate_file
from event_platform.ingest.ingestion import ingest_file
from event_platform.reconcile import reconcile_partition
from event_platform.store.iceberg.warehouse import IcebergWarehouse
from event_platform.store.iceberg.writer import IcebergPartitionWriter

LINES = 3_000


def _worker(catalog_uri: str, location: str, scratch: str, paths: list[str], worker: int) -> None:
    # Widen the window between deciding duplicates and committing, so that workers without
    # the date locks would decide on the same committed state and both store shared events.
    decided = IcebergPartitionWriter._commit_to_iceberg

    def slow_commit(self) -> None:
        time.sleep(0.5)
        decided(self)

    IcebergPartitionWriter._commit_to_iceberg = slow_commit
    store = IcebergWarehouse(catalog_uri, location, scratch_dir=scratch)
    for path in paths:
        ingest_file(Path(path), store, run_id=f"w{worker}-{Path(path).name}", workers=1)


def _files(folder: Path) -> tuple[dict[str, Path], dict[str, int], int]:
    """Files sharing events, their invalid line counts, and the distinct valid events of all.

    a1 and a2 overlap on a third of `a`; b2 is a copy of b; c shares nothing.
    """
    bases = {
        name: generate_file(folder / f"{name}.base", LINES, 0.02, 0.02, seed=seed, days=5)
        for seed, name in enumerate(("a", "b", "c"), start=1)
    }
    lines = {
        name: result.path.read_bytes().splitlines(keepends=True) for name, result in bases.items()
    }
    ranges = {"a1": ("a", 0, 2_000), "a2": ("a", 1_000, 3_000), "b": ("b", 0, LINES),
              "b2": ("b", 0, LINES), "c": ("c", 0, LINES)}  # fmt: skip
    files, invalid = {}, {}
    for name, (base, low, high) in ranges.items():
        files[name] = folder / f"{name}.jsonl"
        files[name].write_bytes(b"".join(lines[base][low:high]))
        listed = bases[base].invalid_lines or {}
        invalid[name] = sum(1 for number in listed if low < number <= high)
    return files, invalid, sum(result.valid for result in bases.values())


@pytest.mark.slow
def test_concurrent_workers_store_every_event_exactly_once(
    tmp_path: Path, catalog_uri: str
) -> None:
    files, invalid, distinct = _files(tmp_path / "files")
    location = str(tmp_path / "iceberg")
    store = IcebergWarehouse(catalog_uri, location, scratch_dir=str(tmp_path))
    store.catalog
    plans = [["a1", "b", "c"], ["a2", "b2", "a1"], ["b", "a2", "c"], ["b2", "a1", "a2"],
             ["c", "b", "b2"]]  # fmt: skip
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(
            target=_worker,
            args=(catalog_uri, location, str(tmp_path), [str(files[n]) for n in plan], i),
        )
        for i, plan in enumerate(plans)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(600)
        assert process.exitcode == 0

    events = store.table("events").scan().to_arrow()  # noqa: F841 - read by the SQL below
    [(rows, hashes)] = duckdb.execute(
        "SELECT count(*), count(DISTINCT event_hash) FROM events"
    ).fetchall()
    assert rows == hashes == distinct
    rejected = store.table("rejected_events").scan().to_arrow()  # noqa: F841
    ingestions = store.table("ingestions").scan().to_arrow()  # noqa: F841
    for name, path in files.items():
        [(stored, kept_invalid, duplicates)] = duckdb.execute(
            """SELECT (SELECT count(*) FROM events WHERE source_file = $f),
                      (SELECT count(*) FROM rejected WHERE source_file = $f
                        AND reasons <> ['duplicate_event']),
                      (SELECT count(*) FROM rejected WHERE source_file = $f
                        AND reasons = ['duplicate_event'])""",
            {"f": path.name},
        ).fetchall()
        total = len(path.read_bytes().splitlines())
        assert stored + kept_invalid + duplicates == total, name
        assert kept_invalid == invalid[name], name
        [(recorded,)] = duckdb.execute(
            "SELECT count(*) FROM ingestions WHERE source_file = $f", {"f": path.name}
        ).fetchall()
        assert recorded == 1
        with store.partition(path.name) as con:
            report = reconcile_partition(path, con, run_id="check")
        assert report.passed, (name, report)
