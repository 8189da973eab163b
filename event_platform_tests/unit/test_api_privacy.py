"""Reason details chosen by the sender never leave without the pii scope, end to end.

A real file goes through the real ingestion, publication and API: its lines break every rule the
contract has, some with keys that are emails or secrets. Without `pii`, `/rejections` shows only
contract paths and masks; `/metrics` labels rejected lines by reason class only.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from prometheus_client.parser import text_string_to_metric_families

from event_platform.contract.reasons import (
    CONTRACT_PATHS,
    OTHER_REASON,
    REASON_CLASSES,
    disclosed_reason,
    disclosed_reasons,
    reason_class,
)
from event_platform.generator import CORRUPTIONS
from event_platform.ingest import ingestion
from event_platform.settings import ApiSettings
from event_platform.store import connection
from event_platform.store.publication import publish_snapshot
from event_platform_tests.conftest import event_line
from event_platform_tests.unit.test_api import KEYS, METRICS_KEY, PII_KEY, get, running_server

EMAIL_KEY = "jane.roe@private.org"
SECRET_KEY = "data-victim-secret-7b1e"


def _line_with(index: int, extra: str) -> str:
    """A valid record with one more member spliced in verbatim (to repeat or invent a key)."""
    return event_line(index)[:-1] + ", " + extra + "}"


def _lines() -> list[str]:
    lines = [corrupt(json.loads(event_line(i))) for i, (_, corrupt) in enumerate(CORRUPTIONS)]
    return [
        *lines,
        _line_with(1000, f'"{EMAIL_KEY}": 1, "{SECRET_KEY}": 2'),  # two sender keys, one line
        event_line(1001).replace('"user_email":', f'"{EMAIL_KEY}": 0, "user_email":'),
        _line_with(1002, '"event_type": 7'),  # a repeated contract key
        _line_with(1003, f'"{EMAIL_KEY}": 1, "{EMAIL_KEY}": 2'),  # a repeated sender key
        event_line(1004),
        event_line(1004),  # the same event twice: duplicate_event
        '{"pad": "' + "x" * 5_000 + '"}',  # over the limit below: line_too_long
    ]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("privacy")
    source = root / "mixed.jsonl"
    source.write_text("\n".join(_lines()) + "\n")
    with connection.connect(root / "warehouse.duckdb") as con:
        ingestion.ingest_file(source, con, run_id="privacy", max_line_bytes=4_096)
    # Not reconciled, so no event is served; rejected lines are published all the same.
    publish_snapshot(root / "warehouse.duckdb", root / "published")
    return root


def _stored_reasons(root: Path) -> list[list[str]]:
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    try:
        return [
            row[0]
            for row in con.execute(
                "SELECT reasons FROM rejected_events ORDER BY line_number"
            ).fetchall()
        ]
    finally:
        con.close()


def test_the_rule() -> None:
    assert disclosed_reason("malformed_json") == "malformed_json"
    assert disclosed_reason("missing_field:data.user_email") == "missing_field:data.user_email"
    assert disclosed_reason("invalid_format:event_time") == "invalid_format:event_time"
    assert disclosed_reason("duplicate_field:event_type") == "duplicate_field:event_type"
    assert disclosed_reason(f"unexpected_field:{EMAIL_KEY}") == "unexpected_field:***"
    assert disclosed_reason(f"duplicate_field:{EMAIL_KEY}") == "duplicate_field:***"
    assert disclosed_reason("unexpected_field:data.x@y.org") == "unexpected_field:data.***"
    assert disclosed_reason("unexpected_field:") == "unexpected_field:***"
    assert disclosed_reason("unexpected_field:data.") == "unexpected_field:data.***"
    assert disclosed_reason("some_new_reason:a@b.org") == f"{OTHER_REASON}:***"
    assert disclosed_reason("some_new_reason") == OTHER_REASON
    assert reason_class(f"unexpected_field:{EMAIL_KEY}") == "unexpected_field"
    assert reason_class("x@y.org") == OTHER_REASON
    assert disclosed_reasons(["unexpected_field:a", "unexpected_field:b", "malformed_json"]) == [
        "unexpected_field:***",
        "malformed_json",
    ]


def test_every_reason_class_the_ingestion_writes_is_known(ingested: Path) -> None:
    stored = [reason for reasons in _stored_reasons(ingested) for reason in reasons]
    assert {reason_class(reason) for reason in stored} == REASON_CLASSES
    for reason in stored:
        _, colon, detail = reason.partition(":")
        if colon and reason_class(reason) not in ("unexpected_field", "duplicate_field"):
            assert detail in CONTRACT_PATHS, reason  # these details come from the contract
    assert f"unexpected_field:{EMAIL_KEY}" in stored
    assert f"unexpected_field:data.{EMAIL_KEY}" in stored
    assert f"duplicate_field:{EMAIL_KEY}" in stored
    assert "duplicate_field:event_type" in stored


def test_no_sender_key_leaves_without_pii(ingested: Path) -> None:
    settings = ApiSettings(snapshot_path=ingested / "published" / "current.duckdb", api_keys=KEYS)
    stored = _stored_reasons(ingested)
    with running_server(settings) as url:
        totals = get(url, "/rejections")
        page = get(url, "/rejections", source_file="mixed.jsonl", limit=1000)
        metrics = get(url, "/metrics", METRICS_KEY, bearer=True)
        full = get(url, "/rejections", PII_KEY, source_file="mixed.jsonl", limit=1000)
    for response in (totals, page, metrics):
        assert response.status_code == 200
        assert EMAIL_KEY not in response.text and SECRET_KEY not in response.text
        assert "@" not in response.text

    shown = {r["reason"]: r["lines"] for r in totals.json()["reasons"]}
    with_sender_key = sum(
        1 for reasons in stored if any(r.startswith("unexpected_field:") for r in reasons)
    )
    # Three lines carry sender keys at the top level or in `data`; each is counted once.
    assert shown["unexpected_field:***"] + shown["unexpected_field:data.***"] == with_sender_key
    assert shown["duplicate_field:event_type"] == 1 and shown["duplicate_field:***"] == 1
    assert {r["reason"] for r in page.json()["reasons"]} == set(shown)
    assert [line["reasons"] for line in page.json()["lines"]] == [
        disclosed_reasons(reasons) for reasons in stored
    ]
    assert EMAIL_KEY in full.text  # the pii scope sees what is stored

    families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
    labels = {
        s.labels["reason"]: s.value for s in families["event_platform_rejected_lines"].samples
    }
    assert set(labels) == REASON_CLASSES | {OTHER_REASON}
    assert labels["unexpected_field"] == with_sender_key
    assert labels[OTHER_REASON] == 0
