"""The event hash is written twice (polars on the ingest path, SQL for rows read back): pin them.

If the two renderings drifted, every stored row would fail reconciliation; these tests find it
on edge values first, and show that reconciliation itself catches a drift.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pytest

from event_platform.contract import EVENTS_CONTRACT
from event_platform.ingest import hashing
from event_platform.ingest.hashing import (
    CANONICAL_COLUMN,
    HASH_KEY,
    event_hash_sql,
    settle_first_in_chunk,
    with_event_hash,
)
from event_platform.ingest.ingestion import ingest_file
from event_platform.ingest.lines import LineChunk
from event_platform.ingest.parsing import StructuralParser
from event_platform.ingest.validation import Validator
from event_platform.reconcile import reconcile_partition
from event_platform.store.connection import connect
from event_platform.store.schema import hash_key_sql
from event_platform_tests.conftest import event_line, write_lines

# Text as the parser extracts it, at the edges of what the contract accepts.
EDGE_TEXT = pl.DataFrame(
    {
        "event_type": ["1", "10", "7", "3"],
        "event_time": [
            "0001-01-01 00:00:00",
            "0999-12-31 23:59:59",
            "9999-12-31 23:59:59",
            "2024-02-29 12:00:00",
        ],
        "processing_date": ["0001-01-01", "0999-12-31", "9999-12-31", "2024-02-29"],
        "user_email": ["a@b.cd", "x.y+z%w-1@sub-1.example.museum", "Q_q@a.b.co", "a@b.cd"],
        "phone_number": ["123456", "123456789012345", "000000", "0603728764"],
    }
)


def edge_lines(*, contract_order: bool) -> list[bytes]:
    """EDGE_TEXT as JSON lines. Out of contract order, no line fits the parser's fast path."""
    lines = []
    for row in EDGE_TEXT.iter_rows(named=True):
        record = {
            "event_type": int(row["event_type"]),
            "event_time": row["event_time"],
            "data": {"user_email": row["user_email"], "phone_number": row["phone_number"]},
            "processing_date": row["processing_date"],
        }
        if not contract_order:
            record = dict(reversed(record.items()))
        lines.append(json.dumps(record).encode())
    return lines


def validated_edges(*, contract_order: bool = True) -> pl.DataFrame:
    """The edge records as validation hands them to hashing: typed values and `canonical`."""
    validator = Validator(EVENTS_CONTRACT, frozenset(range(1, 11)))
    try:
        raw = pa.array(edge_lines(contract_order=contract_order), pa.large_binary())
        validated = validator.validate(LineChunk(1, raw))
    finally:
        validator.close()
    assert validated.rejected.is_empty()
    return validated.valid


def test_polars_and_sql_render_and_hash_every_edge_value_alike() -> None:
    # The polars rendering reads the checked text; the SQL one formats the typed, stored values.
    valid = validated_edges()
    hashed = with_event_hash(valid)
    rows = valid.to_arrow()  # noqa: F841 - read by the SQL below
    sql = duckdb.sql(
        f"SELECT {EVENTS_CONTRACT.canonical_sql} AS canonical, {event_hash_sql(EVENTS_CONTRACT)} "
        "AS event_hash FROM rows"
    ).pl()
    assert valid[CANONICAL_COLUMN].to_list() == sql["canonical"].to_list()
    assert hashed["event_hash"].to_list() == sql["event_hash"].to_list()
    assert hashed["event_hash"].to_list() == [
        hashlib.sha256(text.encode()).hexdigest() for text in sql["canonical"]
    ]
    assert CANONICAL_COLUMN not in hashed.columns


def test_both_parser_paths_render_the_same_canonical_text() -> None:
    parser = StructuralParser(EVENTS_CONTRACT)
    with duckdb.connect() as con:
        parser.prepare(con)
        for contract_order, took_json_path in ((True, False), (False, True)):
            raw = pa.array(edge_lines(contract_order=contract_order), pa.large_binary())
            parsed = parser.parse(con, LineChunk(1, raw))
            # The fast path leaves shape_reasons NULL; the JSON path gives each line a list.
            assert parsed["shape_reasons"].is_not_null().all() is took_json_path
    fast = validated_edges(contract_order=True)
    json_path = validated_edges(contract_order=False)
    assert json_path[CANONICAL_COLUMN].to_list() == fast[CANONICAL_COLUMN].to_list()


def test_hash_key_agrees_with_the_sql_that_backfills_older_warehouses() -> None:
    # Top bit set and clear: a signed 64-bit parse would overflow on the first two.
    hashes = ["f" * 64, "8000000000000000" + "0" * 48, "7" * 64, "0" * 63 + "1"]
    ours = pl.DataFrame({"event_hash": hashes}).select(HASH_KEY)["event_hash"].to_list()
    frame = pl.DataFrame({"event_hash": hashes}).to_arrow()  # noqa: F841 - read by the SQL below
    theirs = [
        key for (key,) in duckdb.sql(f"SELECT {hash_key_sql('event_hash')} FROM frame").fetchall()
    ]
    assert ours == theirs
    assert ours[0] == 2**64 - 1


def test_first_in_chunk_marks_the_earliest_line_of_each_hash() -> None:
    valid = pl.concat([validated_edges(), validated_edges().head(2)])
    hashed = settle_first_in_chunk(with_event_hash(valid))
    assert hashed["first_in_chunk"].to_list() == [True, True, True, True, False, False]


def test_a_repeated_key_is_decided_on_the_full_hash() -> None:
    """Keys nominate the first line of each key; where two hashes share a key (64 bits of a
    sha256, so only made up here), the settle decides on the whole hash."""
    shared = "ab" * 8
    hashes = [shared + "0" * 48, shared + "1" * 48, shared + "0" * 48, "cd" * 32]
    nominated = pl.DataFrame(
        {
            "event_hash": hashes,
            "hash_key": [7, 7, 7, 8],
            "first_in_chunk": [True, False, False, True],
        },
        schema_overrides={"hash_key": pl.UInt64},
    )
    settled = settle_first_in_chunk(nominated)
    assert settled["first_in_chunk"].to_list() == [True, True, False, True]
    # A chunk whose keys are all first is left as it is.
    distinct = nominated.filter(pl.col("first_in_chunk"))
    assert settle_first_in_chunk(distinct).equals(distinct)


def test_ingestion_stores_events_whose_keys_collide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every event given the same key, only the true repeat is a duplicate: the workers
    settle each chunk on full hashes before the writer reads `first_in_chunk`."""
    monkeypatch.setattr(hashing, "HASH_KEY", pl.lit(7, pl.UInt64))
    lines = [event_line(i) for i in range(5)] + [event_line(2)]
    path = write_lines(tmp_path / "collide.jsonl", lines)
    with connect(tmp_path / "warehouse.duckdb") as con:
        result = ingest_file(path, con, run_id="r1")
        stored = con.execute("SELECT line_number FROM events ORDER BY line_number").fetchall()
    assert (result.stored, result.duplicates) == (5, 1)
    assert [line for (line,) in stored] == [1, 2, 3, 4, 5]


def test_reconciliation_catches_a_polars_rendering_that_drifted_from_the_sql(
    tmp_path: Path,
) -> None:
    drifted = dataclasses.replace(
        EVENTS_CONTRACT,
        canonical=pl.concat_str(pl.col("user_email"), pl.col("phone_number"), separator="|"),
    )
    path = tmp_path / "events.jsonl"
    path.write_text(
        '{"event_type": 1, "event_time": "2019-01-04 05:07:26", "data": {"user_email": '
        '"a@b.cd", "phone_number": "0603728764"}, "processing_date": "2019-01-04"}\n'
    )
    with connect(tmp_path / "warehouse.duckdb") as con:
        ingest_file(path, con, run_id="r", contract=drifted)
        report = reconcile_partition(path, con, run_id="r", contract=drifted)
        assert (report.passed, report.mismatched_rows) == (False, 1)
        ingest_file(path, con, run_id="r")
        assert reconcile_partition(path, con, run_id="r").passed
