"""A second stream is one module's worth of contract: the engine needs no change."""

from __future__ import annotations

from pathlib import Path

import pandera.polars as pa
import polars as pl

from event_platform.contract import FieldSpec, StreamContract
from event_platform.ingest.lines import read_line_chunks
from event_platform.ingest.validation import Validator


def clicks_schema(allowed: frozenset[int]) -> pa.DataFrameSchema:
    def https(data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).str.starts_with("https://"))

    def known(data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).is_in([str(v) for v in allowed]))

    text = {"dtype": pl.String, "nullable": True}
    return pa.DataFrameSchema(
        {
            "page": pa.Column(checks=[pa.Check(known, name="out_of_range")], **text),
            "url": pa.Column(checks=[pa.Check(https, name="invalid_format")], **text),
            "ref": pa.Column(**text),
        }
    )


CLICKS = StreamContract(
    name="clicks",
    fields=(
        FieldSpec("page", "integer"),
        FieldSpec("url", "string"),
        FieldSpec("meta", "object"),
        FieldSpec("meta.ref", "string"),
    ),
    value_schema=clicks_schema,
    typed_columns=(pl.col("page").cast(pl.Int32), pl.col("url"), pl.col("ref")),
    # Over the checked text: a valid `page` is already a canonical integer literal.
    canonical=pl.concat_str("page", "url", "ref", separator="\x1f"),
    canonical_sql="concat_ws(chr(31), CAST(page AS VARCHAR), url, ref)",
)


def test_a_second_contract_validates_with_the_same_engine(tmp_path: Path) -> None:
    path = tmp_path / "clicks.jsonl"
    path.write_text(
        "\n".join(
            [
                '{"page": 1, "url": "https://a.example", "meta": {"ref": "mail"}}',
                '{"url": "https://b.example", "page": 2, "meta": {"ref": "ad"}}',
                '{"page": 9, "url": "http://c.example", "meta": {"ref": "x", "y": 1}}',
                '{"page": "1", "url": "https://d.example", "meta": {}}',
            ]
        )
    )
    validator = Validator(CLICKS, frozenset({1, 2}))
    (chunk,) = read_line_chunks(path)
    result = validator.validate(chunk)
    assert result.valid.select("line_number", "page", "ref").rows() == [
        (1, 1, "mail"),
        (2, 2, "ad"),
    ]
    reasons = {row["line_number"]: sorted(row["reasons"]) for row in result.rejected.to_dicts()}
    assert reasons == {
        3: ["invalid_format:url", "out_of_range:page", "unexpected_field:meta.y"],
        4: ["missing_field:meta.ref", "wrong_type:page"],
    }
