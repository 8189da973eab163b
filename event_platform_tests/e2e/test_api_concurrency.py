"""Serving while ingesting: a writer PROCESS keeps inserting into the warehouse and publishing
snapshots while 20 clients page through the API; no 5xx, and the writer never fails.

The writer is a separate process because that is how Dagster runs ingestion, and DuckDB's file
lock is per process: this is the case where serving from the warehouse itself would fail.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from event_platform.settings import ApiSettings
from event_platform.store.publication import publish_snapshot
from event_platform_tests.unit.test_api import (
    KEYS,
    METRICS_KEY,
    PLAIN_KEY,
    build_warehouse,
    running_server,
)

WRITER = """
import sys, time, duckdb
from pathlib import Path
from event_platform.store.publication import publish_snapshot
warehouse, published, seconds = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + seconds
batch = 0
while time.monotonic() < deadline:
    batch += 1
    name = f"w{batch}.jsonl"
    con = duckdb.connect(str(warehouse))
    con.execute(
        "INSERT INTO events (event_hash, event_type, event_time, processing_date, user_email, "
        "phone_number, source_file, line_number, ingested_at, run_id) "
        "SELECT sha256(? || ':' || i), 1, "
        "TIMESTAMP '2019-01-04 05:00:00' + to_seconds(i::BIGINT), DATE '2019-01-04', "
        "'w@example.com', '0600000000', ?, i + 1, now()::TIMESTAMP, 'w' FROM range(200) t(i)",
        [name, name],
    )
    con.execute("INSERT INTO reconciliation_reports (source_file, file_sha256, lines_total, "
                "valid, rejected, duplicates, stored_rows, missing_rows, unexpected_rows, "
                "mismatched_rows, passed, checked_at, run_id, ingest_run_id) "
                "VALUES (?, 's', 200, 200, 0, 0, 200, 0, 0, "
                "0, true, now()::TIMESTAMP, 'w', 'w')", [name])
    con.execute("INSERT INTO ingestions VALUES (?, 'w', 's', 200, 200, 0, 0, now()::TIMESTAMP)",
                [name])
    con.close()
    publish_snapshot(warehouse, published, wait_seconds=10)
print(batch)
"""


def test_reads_never_fail_while_ingestion_writes_and_publishes(tmp_path: Path):
    warehouse = tmp_path / "warehouse.duckdb"
    published = tmp_path / "published"
    build_warehouse(warehouse)
    publish_snapshot(warehouse, published)
    settings = ApiSettings(snapshot_path=published / "current.duckdb", api_keys=KEYS)
    statuses: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()
    with running_server(settings) as url:
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(warehouse), str(published), "4"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        stop = time.monotonic() + 4

        def client(index: int) -> None:
            with httpx.Client(base_url=url, headers={"X-API-Key": PLAIN_KEY}, timeout=20) as http:
                cursor = None
                paths = ["/events", "/stats/daily", "/reconciliation", "/rejections", "/metrics"]
                turn = index
                while time.monotonic() < stop:
                    path = paths[turn % len(paths)]
                    turn += 1
                    params = {"limit": 50, **({"cursor": cursor} if cursor else {})}
                    try:
                        response = http.get(
                            path,
                            params=params if path == "/events" else None,
                            headers={"X-API-Key": METRICS_KEY} if path == "/metrics" else None,
                        )
                    except httpx.HTTPError as exc:
                        with lock:
                            errors.append(repr(exc))
                        continue
                    with lock:
                        statuses.append(response.status_code)
                    if path == "/events" and response.status_code == 200:
                        cursor = response.json()["next_cursor"]

        threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    batches = int(out.strip())
    assert batches >= 2, "the writer should have published several snapshots meanwhile"
    assert not errors
    assert statuses
    assert {status for status in statuses if status >= 500} == set()
    assert set(statuses) == {200}
    # the last publication is what is served now, and every batch made it in
    snapshots = sorted(published.glob("snapshot-*.duckdb"))
    assert len(snapshots) <= 2  # older ones were pruned
