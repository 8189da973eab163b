"""A rejected line is stored byte for byte, reconciled as bytes and shown unambiguously.

The rejected row is the store's only copy of the line: invalid UTF-8 used to be stored as U+FFFD
and a CRLF line lost its carriage return, and reconciliation passed all the same.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from event_platform.ingest.ingestion import ingest_file
from event_platform.reconcile import reconcile_partition, record_report
from event_platform.settings import ApiSettings
from event_platform.store.connection import connect
from event_platform.store.publication import publish_snapshot
from event_platform_tests.conftest import event_line
from event_platform_tests.unit.test_api import KEYS, PII_KEY, PLAIN_KEY, get, running_server

LINES = [
    event_line(1).encode(),
    b"u12\xff\xfe@" + event_line(2).encode()[6:],  # invalid UTF-8 inside a JSON-ish line
    bytes(range(256)).replace(b"\n", b""),  # every byte value but the newline
    b"not json\r",  # a CRLF line: the carriage return is part of its bytes
    b"\x00\x00\x00",
    event_line(3).encode(),
]


def _ingest(tmp_path: Path) -> tuple[Path, Path]:
    source = tmp_path / "binary.jsonl"
    source.write_bytes(b"\n".join(LINES) + b"\n")
    warehouse = tmp_path / "warehouse.duckdb"
    with connect(warehouse) as con:
        ingest_file(source, con, run_id="r1")
        record_report(con, report := reconcile_partition(source, con, run_id="r1"))
    assert report.passed, report
    return source, warehouse


def test_rejected_lines_are_stored_byte_for_byte(tmp_path: Path) -> None:
    _, warehouse = _ingest(tmp_path)
    with connect(warehouse, read_only=True) as con:
        stored = con.execute(
            "SELECT line_number, raw_line FROM rejected_events ORDER BY line_number"
        ).fetchall()
    assert stored == [(number, LINES[number - 1]) for number in (2, 3, 4, 5)]


def test_reconciliation_compares_bytes(tmp_path: Path) -> None:
    """Altering one byte of a stored rejected line (here: U+FFFD for an invalid byte, what the
    store used to keep) is a mismatch."""
    source, warehouse = _ingest(tmp_path)
    replaced = LINES[1].decode("utf-8", "replace").encode()
    with connect(warehouse) as con:
        con.execute("UPDATE rejected_events SET raw_line = ? WHERE line_number = 2", [replaced])
        report = reconcile_partition(source, con, run_id="r2")
    assert not report.passed and report.mismatched_rows == 1
    assert report.samples["mismatched"] == [2]


def test_the_api_shows_exact_bytes_as_base64_and_text_only_when_utf8(tmp_path: Path) -> None:
    _, warehouse = _ingest(tmp_path)
    publish_snapshot(warehouse, tmp_path / "published")
    settings = ApiSettings(snapshot_path=tmp_path / "published" / "current.duckdb", api_keys=KEYS)
    with running_server(settings) as url:
        shown = get(url, "/rejections", PII_KEY, source_file="binary.jsonl").json()["lines"]
        plain = get(url, "/rejections", PLAIN_KEY, source_file="binary.jsonl").json()["lines"]
    assert [base64.b64decode(line["raw_line_base64"]) for line in shown] == LINES[1:5]
    assert [line["raw_line"] for line in shown] == [None, None, "not json\r", "\x00\x00\x00"]
    assert all(line["raw_line"] is None and line["raw_line_base64"] is None for line in plain)
    assert os.path.exists(tmp_path / "published" / "current.duckdb")
