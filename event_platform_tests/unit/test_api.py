"""The HTTP API against a real uvicorn server on a published snapshot of a known warehouse.

The warehouse is built here with `create_tables` and INSERTs of known rows: files a and b passed
reconciliation, c passed once and then failed (its latest report decides: not served), d failed
once and then passed (served). Event times repeat so ordering must break ties by event_hash.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import duckdb
import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.servers import free_port, process_group, wait_until
from event_platform.api import create_app
from event_platform.api.privacy import mask_email, mask_phone
from event_platform.contract.reasons import REASON_CLASSES
from event_platform.settings import ApiSettings, Settings, SettingsError, parse_api_keys
from event_platform.store.publication import publish_snapshot
from event_platform.store.schema import create_tables

PII_KEY = "pii-key-0123456789"
PLAIN_KEY = "plain-key-0123456789"
METRICS_KEY = "metrics-key-0123456789"
KEYS = {PII_KEY: frozenset({"pii"}), PLAIN_KEY: frozenset(), METRICS_KEY: frozenset({"metrics"})}
# file -> passed flags of its reports, oldest first; the latest decides.
REPORTS = {"a.jsonl": [True], "b.jsonl": [True], "c.jsonl": [True, False], "d.jsonl": [False, True]}
EVENTS_PER_FILE = {"a.jsonl": 41, "b.jsonl": 23, "c.jsonl": 17, "d.jsonl": 30}
SERVED = ("a.jsonl", "b.jsonl", "d.jsonl")
# Real reason codes; lines 104, 105 and b's 100 carry keys chosen by the sender (PII, secrets).
REJECTIONS = [
    ("a.jsonl", 100, ["malformed_json"]),
    ("a.jsonl", 101, ["malformed_json"]),
    ("a.jsonl", 102, ["invalid_format:data.user_email", "invalid_format:data.phone_number"]),
    ("a.jsonl", 103, ["duplicate_event"]),
    (
        "a.jsonl",
        104,
        [
            "missing_field:data.user_email",
            "unexpected_field:jane.roe@private.org",
            "unexpected_field:x-api-secret-3f9a",
        ],
    ),
    ("a.jsonl", 105, ["unexpected_field:data.victim.secret@corp.com"]),
    ("b.jsonl", 100, ["duplicate_field:data.user_email", "duplicate_field:a.b@c.org"]),
    # `{"k@x.org": 1, "k@x.org": 2}` as the ingestion stores it: the key is unexpected twice.
    (
        "b.jsonl",
        101,
        ["unexpected_field:k@x.org", "unexpected_field:k@x.org", "duplicate_field:k@x.org"],
    ),
    ("c.jsonl", 100, ["out_of_range:event_type"]),
    ("d.jsonl", 100, ["duplicate_event"]),
]
SENDER_TEXT = ("jane.roe", "private.org", "x-api-secret", "victim", "corp.com", "a.b@c", "k@x")
# What a key without pii sees, lines per shown reason (line 104 is one `unexpected_field:***`).
MASKED_REASON_LINES = {
    "malformed_json": 2,
    "invalid_format:data.user_email": 1,
    "invalid_format:data.phone_number": 1,
    "duplicate_event": 2,
    "missing_field:data.user_email": 1,
    "unexpected_field:***": 2,
    "unexpected_field:data.***": 1,
    "duplicate_field:data.user_email": 1,
    "duplicate_field:***": 2,
    "out_of_range:event_type": 1,
}
# Lines per reason class, as /metrics exports them (line 102 is one `invalid_format` line).
CLASS_LINES = {
    "malformed_json": 2,
    "invalid_format": 1,
    "duplicate_event": 2,
    "missing_field": 1,
    "unexpected_field": 3,
    "duplicate_field": 2,
    "out_of_range": 1,
}
RAW_LINE = '{"data": {"user_email": "secret@example.com"}}'


def build_warehouse(path: Path, events_per_file: dict[str, int] = EVENTS_PER_FILE) -> None:
    """Known rows; event times step every 3 rows and files share times, so ties are common."""
    con = duckdb.connect(str(path))
    try:
        create_tables(con)
        for source_file, count in events_per_file.items():
            con.execute(
                """INSERT INTO events (event_hash, event_type, event_time, processing_date,
                                      user_email, phone_number, source_file, line_number,
                                      ingested_at, run_id)
                   SELECT sha256(?::VARCHAR || ':' || i), (i % 10) + 1,
                          TIMESTAMP '2019-01-04 05:00:00' + to_seconds((i // 3)::BIGINT),
                          DATE '2019-01-04' + (i // 20)::INTEGER,
                          'user' || i || '@example.com', '06' || lpad(i::VARCHAR, 8, '0'),
                          ?, i + 1, TIMESTAMP '2026-01-01 00:00:00', 'run-1'
                   FROM range(?) t(i)""",
                [source_file, source_file, count],
            )
        for source_file, verdicts in REPORTS.items():
            for index, passed in enumerate(verdicts):
                con.execute(
                    "INSERT INTO reconciliation_reports (source_file, file_sha256, lines_total, "
                    "valid, rejected, duplicates, stored_rows, missing_rows, unexpected_rows, "
                    "mismatched_rows, passed, checked_at, run_id, ingest_run_id) VALUES "
                    "(?, 'sha', 100, 90, 8, 2, 90, 0, 0, 0, ?, "
                    "TIMESTAMP '2026-01-01 00:00:00' + to_minutes(?::BIGINT), 'run-1', 'run-1')",
                    [source_file, passed, index],
                )
            con.execute(
                "INSERT INTO ingestions VALUES (?, 'run-1', 'sha', 100, 90, 8, 2, "
                "TIMESTAMP '2026-01-01 00:00:00')",
                [source_file],
            )
        for source_file, line, reasons in REJECTIONS:
            con.execute(
                "INSERT INTO rejected_events (source_file, line_number, raw_line, reasons, "
                "rejected_at, run_id) VALUES (?, ?, ?, ?, now()::TIMESTAMP, 'run-1')",
                [source_file, line, RAW_LINE.encode(), reasons],
            )
    finally:
        con.close()


def expected_events(warehouse: Path) -> list[dict]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "SELECT event_hash, event_time, user_email, phone_number, source_file FROM events "
            "WHERE source_file IN ? ORDER BY event_time, event_hash",
            [list(SERVED)],
        ).fetchall()
    finally:
        con.close()
    return [
        {"event_hash": h, "event_time": t.isoformat(), "user_email": e, "phone_number": p}
        for h, t, e, p, _ in rows
    ]


@contextlib.contextmanager
def running_server(settings: ApiSettings) -> Iterator[str]:
    """The real app under a real uvicorn on a free loopback port, in a thread.

    It reads no Dagster instance: `make test` exports the developer's DAGSTER_HOME.
    """
    port = free_port()
    app = create_app(replace(settings, host="127.0.0.1", port=port), dagster_instance=lambda: None)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("api")
    warehouse = root / "warehouse.duckdb"
    build_warehouse(warehouse)
    publish_snapshot(warehouse, root / "published")
    landing = root / "landing"
    landing.mkdir()
    for name in [*REPORTS, "pending-1.jsonl", "pending-2.jsonl", ".x.jsonl.123.tmp"]:
        (landing / name).write_text("{}\n")
    return warehouse, root


@pytest.fixture(scope="module")
def server(published: tuple[Path, Path]) -> Iterator[str]:
    warehouse, root = published
    settings = ApiSettings(
        snapshot_path=root / "published" / "current.duckdb",
        api_keys=KEYS,
        landing_dir=root / "landing",
        warehouse_path=warehouse,
    )
    with running_server(settings) as url:
        yield url


def get(
    url: str, path: str, key: str | None = PLAIN_KEY, *, bearer: bool = False, **params
) -> httpx.Response:
    headers = {}
    if key:
        headers = {"Authorization": f"Bearer {key}"} if bearer else {"X-API-Key": key}
    return httpx.get(url + path, params=params, headers=headers, timeout=10)


def all_pages(url: str, key: str = PLAIN_KEY, **params) -> tuple[list[dict], int]:
    items, pages, cursor = [], 0, None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        response = get(url, "/events", key, **query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= params.get("limit", 100)
        items.extend(body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages
        assert len(body["items"]) == params.get("limit", 100)


@pytest.mark.parametrize("limit", [1, 7, 30, 94, 1000])
def test_pages_return_exactly_the_published_rows(server, published, limit):
    warehouse, _ = published
    expected = expected_events(warehouse)
    items, pages = all_pages(server, PII_KEY, limit=limit)
    got = [
        {k: item[k] for k in ("event_hash", "event_time", "user_email", "phone_number")}
        for item in items
    ]
    assert got == expected  # same rows, same stable order, none missing or repeated
    assert len({item["event_hash"] for item in items}) == len(expected)
    assert pages == -(-len(expected) // limit)  # no trailing empty page
    assert {item["source_file"] for item in items} == set(SERVED)


def test_default_limit_is_100(server, published):
    body = get(server, "/events").json()
    assert len(body["items"]) == 94  # fewer than 100 published rows: one page
    assert body["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({"event_type": 3}, lambda r: r["event_type"] == 3),
        (
            {"event_time_from": "2019-01-04T05:00:03", "event_time_to": "2019-01-04T05:00:07"},
            lambda r: "2019-01-04T05:00:03" <= r["event_time"] < "2019-01-04T05:00:07",
        ),
        ({"processing_date": "2019-01-05"}, lambda r: r["processing_date"] == "2019-01-05"),
        (
            {"event_time_from": "2019-01-04T06:00:03+01:00"},  # an offset is converted to UTC
            lambda r: r["event_time"] >= "2019-01-04T05:00:03",
        ),
    ],
)
def test_filters(server, params, keep):
    everything, _ = all_pages(server, limit=1000)
    filtered, _ = all_pages(server, limit=4, **params)
    assert filtered == [row for row in everything if keep(row)]
    assert filtered


def test_masking_depends_on_the_pii_scope(server, published):
    warehouse, _ = published
    first = expected_events(warehouse)[0]
    masked = get(server, "/events", PLAIN_KEY, limit=1).json()["items"][0]
    raw = get(server, "/events", PII_KEY, limit=1).json()["items"][0]
    assert raw["user_email"] == first["user_email"]
    assert raw["phone_number"] == first["phone_number"]
    assert masked["user_email"] == mask_email(first["user_email"]) != first["user_email"]
    assert masked["phone_number"] == mask_phone(first["phone_number"])
    one = get(server, f"/events/{first['event_hash']}").json()
    assert one["user_email"] == masked["user_email"]
    assert get(server, f"/events/{first['event_hash']}", PII_KEY).json() == raw


def test_mask_formats():
    assert mask_email("TAFgZ@gmail.com") == "T***@gmail.com"
    assert mask_phone("0603728764") == "06******64"
    assert mask_email("no-at-sign") == "***"
    assert mask_phone("123") == "***"


def test_email_filter_needs_pii(server, published):
    email = expected_events(published[0])[5]["user_email"]
    assert get(server, "/events", PLAIN_KEY, user_email=email).status_code == 403
    rows = get(server, "/events", PII_KEY, user_email=email).json()["items"]
    assert rows
    assert {row["user_email"] for row in rows} == {email}


@pytest.mark.parametrize("path", ["/events", "/events/abc", "/stats/daily", "/reconciliation"])
@pytest.mark.parametrize("key", [None, "wrong-key", PII_KEY + "x", ""])
def test_401_without_a_valid_key(server, path, key):
    response = get(server, path, key)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


@pytest.mark.parametrize("path", ["/health", "/ready", "/openapi.json"])
def test_open_endpoints_need_no_key(server, path):
    assert get(server, path, None).status_code == 200


def test_metrics_need_a_metrics_key_as_api_key_or_bearer(server):
    """Prometheus sends `Authorization: Bearer`; the scrape key reads nothing but /metrics."""
    for key in (None, "wrong-key"):
        response = get(server, "/metrics", key)
        assert response.status_code == 401, response.text
        assert get(server, "/metrics", key, bearer=True).status_code == 401
    for key in (PLAIN_KEY, PII_KEY):
        response = get(server, "/metrics", key)
        assert response.status_code == 403
        assert response.json()["error"] == "forbidden"
    for bearer in (False, True):
        response = get(server, "/metrics", METRICS_KEY, bearer=bearer)
        assert response.status_code == 200
        assert "event_platform_events_stored" in response.text
    for path in ("/events", "/rejections", "/stats/daily", "/reconciliation"):
        assert get(server, path, METRICS_KEY, bearer=True).status_code == 403
    # Bearer works for the data endpoints too, with the same scopes.
    assert get(server, "/events", PLAIN_KEY, bearer=True).status_code == 200
    email = get(server, "/events", PII_KEY, bearer=True, limit=1).json()["items"][0]["user_email"]
    assert "***" not in email


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "zzz",
        "",
        _b64("not json"),
        _b64("[1, 2]"),
        _b64('{"v": 1, "t": "2019-01-04T05:00:00"}'),
        _b64('{"v": 2, "t": "2019-01-04T05:00:00", "h": "ab"}'),
        _b64('{"v": 1, "t": "yesterday", "h": "ab"}'),
        _b64('{"v": 1, "t": "2019-01-04T05:00:00+02:00", "h": "ab"}'),
        "é" * 10,
    ],
)
def test_400_on_a_garbage_cursor(server, cursor):
    response = get(server, "/events", cursor=cursor)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "bad_cursor"


def test_400_on_an_inverted_time_range(server):
    response = get(
        server, "/events", event_time_from="2019-01-05T00:00:00", event_time_to="2019-01-04"
    )
    assert response.status_code == 400
    assert response.json()["error"] == "bad_filter"


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"event_type": "x"}])
def test_422_on_invalid_parameters(server, params):
    response = get(server, "/events", **params)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_error"
    assert "Traceback" not in response.text


def test_404_for_unknown_and_unpublished_hashes(server, published):
    assert get(server, "/events/" + "0" * 64).status_code == 404
    failed_hash = hashlib.sha256(b"c.jsonl:0").hexdigest()  # file c's latest report failed
    response = get(server, f"/events/{failed_hash}")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "no published event has this hash"}
    assert get(server, "/no/such/route").json()["error"] == "not_found"


def test_daily_stats_match_the_published_rows(server, published):
    everything, _ = all_pages(server, limit=1000)
    expected: dict[tuple[str, int], int] = {}
    for row in everything:
        key = (row["processing_date"], row["event_type"])
        expected[key] = expected.get(key, 0) + 1
    days = get(server, "/stats/daily").json()["days"]
    assert {(d["day"], d["event_type"]): d["events"] for d in days} == expected


def test_reconciliation_is_the_latest_report_per_file(server):
    files = {f["source_file"]: f for f in get(server, "/reconciliation").json()["files"]}
    assert set(files) == set(REPORTS)
    for name, verdicts in REPORTS.items():
        assert files[name]["passed"] is verdicts[-1]
        assert files[name]["served"] is (name in SERVED)


def test_rejections(server):
    body = get(server, "/rejections", PII_KEY).json()
    counts = {r["reason"]: r["lines"] for r in body["reasons"]}
    expected: dict[str, int] = {}
    for _, _, reasons in REJECTIONS:
        for reason in set(reasons):  # lines: a reason repeated in one line counts once
            expected[reason] = expected.get(reason, 0) + 1
    assert counts == expected  # the pii scope sees every reason as stored
    plain = get(server, "/rejections", source_file="a.jsonl", limit=3).json()
    assert [line["line_number"] for line in plain["lines"]] == [100, 101, 102]
    assert all(line["raw_line"] is None and line["raw_line_redacted"] for line in plain["lines"])
    assert plain["next_after_line"] == 102
    rest = get(server, "/rejections", source_file="a.jsonl", after_line=102).json()
    assert [line["line_number"] for line in rest["lines"]] == [103, 104, 105]
    raw = get(server, "/rejections", PII_KEY, source_file="a.jsonl").json()
    assert {line["raw_line"] for line in raw["lines"]} == {RAW_LINE}
    assert get(server, "/rejections", source_file="nope.jsonl").status_code == 404


def test_reason_details_from_the_sender_are_masked_without_pii(server, caplog):
    caplog.set_level(logging.DEBUG)
    plain = get(server, "/rejections")
    assert {r["reason"]: r["lines"] for r in plain.json()["reasons"]} == MASKED_REASON_LINES
    lines = {
        line["line_number"]: line["reasons"]
        for line in get(server, "/rejections", source_file="a.jsonl").json()["lines"]
    }
    assert lines[104] == ["missing_field:data.user_email", "unexpected_field:***"]
    assert lines[105] == ["unexpected_field:data.***"]
    assert lines[102] == ["invalid_format:data.user_email", "invalid_format:data.phone_number"]
    per_file_response = get(server, "/rejections", source_file="b.jsonl")
    per_file = per_file_response.json()
    assert per_file["lines"][0]["reasons"] == [
        "duplicate_field:data.user_email",
        "duplicate_field:***",
    ]
    assert per_file["lines"][1]["reasons"] == ["unexpected_field:***", "duplicate_field:***"]
    assert {r["reason"]: r["lines"] for r in per_file["reasons"]} == {
        "duplicate_field:data.user_email": 1,
        "duplicate_field:***": 2,
        "unexpected_field:***": 1,
    }
    responses = [plain, per_file_response, get(server, "/rejections", source_file="a.jsonl")]
    for text in [r.text for r in responses] + [caplog.text]:
        assert not [secret for secret in SENDER_TEXT if secret in text], text
    # The pii scope sees the stored reasons; the server logs none of them.
    full = get(server, "/rejections", PII_KEY, source_file="a.jsonl").json()
    assert [line["reasons"] for line in full["lines"]] == [
        r for f, _, r in REJECTIONS if f == "a.jsonl"
    ]
    assert not [secret for secret in SENDER_TEXT if secret in caplog.text]


def test_metrics_match_the_store(server, published):
    warehouse, _ = published
    get(server, "/events")  # at least one observed request
    response = get(server, "/metrics", METRICS_KEY)
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}

    def value(name: str, **labels: str) -> float:
        samples = [sample for family in families.values() for sample in family.samples]
        for sample in samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
        raise AssertionError(f"{name} {labels} missing")

    assert value("event_platform_snapshot_up") == 1
    assert value("event_platform_events_stored") == sum(EVENTS_PER_FILE[f] for f in SERVED)
    # Reason classes only, each one exported (0 when absent): a fixed set of label values.
    rejected = {
        sample.labels["reason"]: sample.value
        for sample in families["event_platform_rejected_lines"].samples
    }
    assert rejected == {name: CLASS_LINES.get(name, 0) for name in REASON_CLASSES | {"other"}}
    assert value("event_platform_error_bucket_rows") == len(REJECTIONS)
    assert value("event_platform_error_bucket_growth_1h") == len(REJECTIONS)
    assert value("event_platform_landing_files_pending") == 2
    assert value("event_platform_files_failed_reconciliation") == 1
    assert value("event_platform_files_published") == len(SERVED)
    # latest reports: 8 rejected of 100 lines each
    assert value("event_platform_rejection_rate") == pytest.approx(0.08)
    # the latest passing report is d's second one, at 00:01
    assert value("event_platform_last_successful_ingest_timestamp_seconds") == (
        datetime.fromisoformat("2026-01-01T00:01:00+00:00").timestamp()
    )
    assert value("event_platform_duckdb_file_bytes", file="warehouse") == warehouse.stat().st_size
    assert value("event_platform_duckdb_file_bytes", file="snapshot") > 0
    assert (
        value("event_platform_api_request_duration_seconds_count", route="/events", status="200")
        >= 1
    )
    assert "@" not in response.text  # no email ever reaches a label
    assert not [secret for secret in SENDER_TEXT if secret in response.text]


def test_ready_and_metrics_without_a_snapshot(tmp_path):
    settings = ApiSettings(snapshot_path=tmp_path / "published" / "current.duckdb")
    with running_server(settings) as url:
        health = get(url, "/health", None)
        assert health.status_code == 200
        # Liveness only, and it says so: no snapshot is claimed.
        assert health.json()["status"] == "ok" and health.json()["snapshot"] is None
        assert "publish-snapshot" in health.json()["detail"]
        response = get(url, "/ready", None)
        assert response.status_code == 503
        assert response.json()["error"] == "not_ready"
        assert "publish-snapshot" in response.json()["detail"]
        unavailable = get(url, "/events", None)
        assert unavailable.status_code == 503
        assert unavailable.json() == {
            "error": "snapshot_unavailable",
            "detail": "no snapshot has been published yet: run `event-platform publish-snapshot`"
            " or materialise the published_events asset",
        }
        assert str(tmp_path) not in unavailable.text  # no server paths to clients
        # Without keys configured (loopback only) /metrics stays open.
        families = {f.name: f for f in text_string_to_metric_families(get(url, "/metrics").text)}
        assert families["event_platform_snapshot_up"].samples[0].value == 0

        warehouse = tmp_path / "warehouse.duckdb"
        build_warehouse(warehouse)
        result = publish_snapshot(warehouse, tmp_path / "published")
        health = get(url, "/health", None).json()
        assert health["snapshot"] == result.snapshot.name
        assert get(url, "/ready", None).json()["snapshot"] == result.snapshot.name


def test_unexpected_errors_are_500_json_without_internals(tmp_path, caplog):
    published_dir = tmp_path / "published"
    published_dir.mkdir()
    broken = published_dir / "snapshot-20260101T000000000000Z-1.duckdb"
    con = duckdb.connect(str(broken))
    con.execute("CREATE TABLE events (event_hash VARCHAR)")  # a snapshot missing columns
    con.close()
    (published_dir / "current.duckdb").symlink_to(broken.name)
    settings = ApiSettings(snapshot_path=published_dir / "current.duckdb")
    with running_server(settings) as url:
        response = get(url, "/events", None, user_email="x@example.com")
        assert response.status_code == 403 or response.status_code == 500
        response = get(url, "/events", None)
        assert response.status_code == 500
        assert response.json() == {"error": "internal_error", "detail": None}
        assert get(url, "/health", None).status_code == 200  # the server survives
    assert "BinderException" in caplog.text
    assert "event_time" not in response.text


def test_refuses_non_loopback_without_keys(tmp_path):
    settings = ApiSettings(snapshot_path=tmp_path / "current.duckdb", host="0.0.0.0")
    with pytest.raises(SettingsError, match="refusing to listen"):
        create_app(settings)
    create_app(replace(settings, api_keys=KEYS))  # with keys it may bind anywhere
    for host in ("127.0.0.1", "::1", "localhost"):
        create_app(replace(settings, host=host))


def test_serve_command_reports_a_usage_error(tmp_path, monkeypatch):
    import argparse

    from event_platform.cli import serve
    from event_platform.cli.main import UsageError

    monkeypatch.setenv("EVENT_PLATFORM_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("EVENT_PLATFORM_API_KEYS", raising=False)
    parser = argparse.ArgumentParser()
    serve.register(parser.add_subparsers())
    args = parser.parse_args(["serve", "--host", "0.0.0.0", "--port", "9999"])
    with pytest.raises(UsageError, match="without API keys"):
        args.func(args, Settings.from_env())


def test_api_settings_from_env(tmp_path):
    settings = Settings.from_env(
        {"EVENT_PLATFORM_DATA_DIR": str(tmp_path), "EVENT_PLATFORM_API_KEYS": "k1:pii, k2"}
    ).api
    assert settings.snapshot_path == tmp_path / "published" / "current.duckdb"
    assert settings.api_keys == {"k1": frozenset({"pii"}), "k2": frozenset()}
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8080, 2)
    assert Settings.from_env({"EVENT_PLATFORM_API_WORKERS": "3"}).api.workers == 3
    for bad in ("0", "two", ""):
        with pytest.raises(SettingsError, match="EVENT_PLATFORM_API_WORKERS"):
            Settings.from_env({"EVENT_PLATFORM_API_WORKERS": bad})
    assert parse_api_keys("p:metrics") == {"p": frozenset({"metrics"})}
    with pytest.raises(SettingsError):
        parse_api_keys("k1:admin")
    with pytest.raises(SettingsError):
        parse_api_keys(":pii")


def test_cursor_round_trip_is_opaque_json():
    from event_platform.api.cursor import decode_cursor, encode_cursor

    when = datetime(2019, 1, 4, 5, 7, 26, 123456)
    cursor = encode_cursor(when, "ab" * 32)
    assert json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["h"] == "ab" * 32
    assert decode_cursor(cursor) == (when, "ab" * 32)


@pytest.mark.slow
def test_worker_processes_share_one_set_of_request_metrics(published, tmp_path):
    """`serve --workers 2`: every scrape, whichever worker answers it, counts all requests."""
    warehouse, root = published
    port = free_port()
    env = dict(
        os.environ,
        EVENT_PLATFORM_DATA_DIR=str(root),
        EVENT_PLATFORM_DUCKDB=str(warehouse),
        EVENT_PLATFORM_API_KEYS=f"{PLAIN_KEY},{METRICS_KEY}:metrics",
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("DAGSTER_HOME", None)  # never the developer's instance
    command = [sys.executable, "-m", "event_platform.cli", "serve", "--workers", "2"]
    with process_group(
        [*command, "--port", str(port)], env=env, cwd=Path.cwd(), log=tmp_path / "serve.log"
    ):
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(url + "/ready", timeout=2).status_code == 200, timeout=60,
                   interval=0.2, what="the API to serve")  # fmt: skip
        requests = 40
        with ThreadPoolExecutor(8) as pool:  # concurrent new connections reach both workers
            statuses = list(pool.map(lambda _: get(url, "/events", limit=5).status_code,
                                     range(requests)))  # fmt: skip
        assert statuses == [200] * requests
        for _ in range(6):
            families = {
                family.name: family
                for family in text_string_to_metric_families(get(url, "/metrics", METRICS_KEY).text)
            }
            counted = sum(
                sample.value
                for sample in families["event_platform_api_request_duration_seconds"].samples
                if sample.name.endswith("_count") and sample.labels["route"] == "/events"
            )
            assert counted == requests
            assert families["event_platform_events_stored"].samples[0].value == sum(
                EVENTS_PER_FILE[name] for name in SERVED
            )
