"""Structural parsing: raw line bytes to shape reasons and extracted field text, in one SQL pass.

DuckDB's JSON kernel (yyjson) parses every line; where it is lenient we add what strict JSON
requires: it accepts trailing commas and NaN/Infinity, so a line that contains either outside
its string literals is malformed. Lines are decoded with `try(decode(...))`, so invalid UTF-8
rejects one line, and a trailing `\\r` is dropped before anything else looks at the line.

Most lines of a healthy feed are written by one producer in one shape. The fast path, generated
from the contract, matches that shape exactly (keys in contract order, strings without escapes
or control characters, integers as canonical literals, JSON whitespace between tokens): in C
where the package was built with it (`fast_shape`), else as a regex, and the two accept the same
lines. It accepts a strict subset of JSON, so a line it matches is a well-typed object with
exactly the contract's keys, and the values it extracts equal what a JSON decoder would return:
no reason to look further. Every line it does not match (any other key order, an escape,
anything broken) takes the full JSON path, so the fast path changes speed, never verdicts.

Both paths are generated from the contract's field list, so another stream's shape needs no
code here. What this stage emits: `line_number`, `line` (decoded text or NULL, without a
trailing `\\r`), `raw` (the line's exact bytes), `shape_reasons`
(NULL when the fast path proved the shape), and one text column per scalar field (NULL where
the field is absent or of the wrong JSON type).
"""

from __future__ import annotations

import re

import duckdb
import polars as pl
import pyarrow as pa

from event_platform.contract import StreamContract
from event_platform.ingest import fast_shape
from event_platform.ingest.lines import LineChunk

# After stripping string literals, these only occur in JSON that yyjson wrongly accepts.
LENIENT = r"(?i),[ \t\r\n]*[}\]]|nan|inf"
STRING_LITERAL = r'"(?:[^"\\]|\\.)*"'
JSON_TYPES = {
    "integer": "json_type({v}) IN ('BIGINT', 'UBIGINT') OR "
    "(json_type({v}) = 'DOUBLE' AND regexp_full_match({v}, '-?[0-9]+'))",
    "string": "json_type({v}) = 'VARCHAR'",
    "object": "json_type({v}) = 'OBJECT'",
}


JSON_SPACE = r"[ \t\r]*"
FAST_VALUES = {
    "string": r'"(?P<{name}>[^"\\\x00-\x1f]*)"',
    # Not `-0`: the JSON kernel reads it as the integer 0, and so must a line the regex matches.
    "integer": r"(?P<{name}>0|-?[1-9][0-9]*)",
}


PARSED_VIEW = "parsed_lines"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _json_path(name: str) -> str:
    return _quote('$."' + name + '"')


class StructuralParser:
    """Compiles one contract's shape into SQL once; `parse` runs it over a chunk of lines."""

    def __init__(self, contract: StreamContract, *, native: bool | None = None) -> None:
        """`native`: match the fast path in C (True) or with the regex (False); by default C
        wherever it is built, unless `EVENT_PLATFORM_PARSER=regex`."""
        self.contract = contract
        self.sql = self._compile()
        self.fast_pattern = "^" + JSON_SPACE + self._fast_object("") + JSON_SPACE + "$"
        self.outputs = [f.name for f in contract.scalar_fields]
        # The same shape compiled to C, where the package was built with it (`fast_shape`).
        native = fast_shape.available() if native is None else native
        self.locator = fast_shape.ShapeLocator(contract) if native else None

    def _fast_object(self, parent: str) -> str:
        members = []
        for child in self.contract.children(parent):
            if child.json_type == "object":
                value = self._fast_object(child.path)
            else:
                value = FAST_VALUES[child.json_type].format(name=child.name)
            members.append(f'"{re.escape(child.name)}"{JSON_SPACE}:{JSON_SPACE}{value}')
        separator = f"{JSON_SPACE},{JSON_SPACE}"
        return r"\{" + JSON_SPACE + separator.join(members) + JSON_SPACE + r"\}"

    def _object_level(
        self, parent: str, source: str, level: int
    ) -> tuple[list[tuple[str, str]], list[str]]:
        """SQL for one object level: ((expression, alias) items, reason list expressions)."""
        children = self.contract.children(parent)
        prefix = parent + "." if parent else ""
        keys, values = f"keys_{level}", f"values_{level}"
        expected = "[" + ", ".join(_quote(c.name) for c in children) + "]"
        paths = "[" + ", ".join(_json_path(c.name) for c in children) + "]"
        items = [(f"json_keys({source})", keys), (f"json_extract({source}, {paths})", values)]
        reasons = [
            "list_filter(["
            + ", ".join(
                f"CASE WHEN NOT list_contains({keys}, {_quote(c.name)}) "
                f"THEN {_quote('missing_field:' + c.path)} END"
                for c in children
            )
            + "], lambda r: r IS NOT NULL)",
            f"list_transform(list_filter({keys}, lambda k: NOT list_contains({expected}, k)), "
            f"lambda k: {_quote('unexpected_field:' + prefix)} || k)",
            # Each repeated key once, at its first position: `list_distinct`'s order varies
            # by platform, and stored reasons must not.
            f"CASE WHEN len({keys}) <> len(list_distinct({keys})) THEN list_transform("
            f"list_filter({keys}, lambda k, i: list_position({keys}, k) = i AND "
            f"len(list_filter({keys}, lambda x: x = k)) > 1), "
            f"lambda k: {_quote('duplicate_field:' + prefix)} || k) END",
        ]
        for index, child in enumerate(children, start=1):
            value = f"{values}[{index}]"
            well_typed = JSON_TYPES[child.json_type].format(v=value)
            reasons.append(
                f"CASE WHEN {value} IS NOT NULL AND NOT ({well_typed}) "
                f"THEN [{_quote('wrong_type:' + child.path)}] END"
            )
        return items, reasons

    def _compile(self) -> str:
        levels: list[str] = []
        reasons: list[str] = [
            "CASE WHEN line IS NULL THEN ['malformed_json'] END",
            "CASE WHEN blank THEN ['empty_line'] END",
            "CASE WHEN line IS NOT NULL AND NOT blank AND NOT is_json THEN ['malformed_json'] END",
            "CASE WHEN root_type <> 'OBJECT' THEN ['not_an_object'] END",
        ]
        outputs: list[str] = []
        sources = {"": ("line", "root_type = 'OBJECT'")}
        for level, parent in enumerate(self.contract.object_paths):
            source, guard = sources[parent]
            items, level_reasons = self._object_level(parent, source, level)
            select = ", ".join(
                f"CASE WHEN {guard} THEN {expression} END AS {alias}" for expression, alias in items
            )
            levels.append(select)
            reasons.extend(f"CASE WHEN {guard} THEN {r} END" for r in level_reasons)
            for index, child in enumerate(self.contract.children(parent), start=1):
                value = f"values_{level}[{index}]"
                well_typed = JSON_TYPES[child.json_type].format(v=value)
                if child.json_type == "object":
                    sources[child.path] = (value, f"{guard} AND ({well_typed})")
                elif child.json_type == "string":
                    outputs.append(
                        f"CASE WHEN {guard} AND ({well_typed}) "
                        f"THEN json_extract_string({value}, '$')"
                        f" END AS {child.name}"
                    )
                else:
                    outputs.append(
                        f"CASE WHEN {guard} AND ({well_typed}) THEN CAST({value} AS VARCHAR)"
                        f" END AS {child.name}"
                    )
        reason_list = ", ".join(f"coalesce({r}, []::VARCHAR[])" for r in reasons)
        stages = [
            "decoded AS (SELECT line_number, raw, try(decode(raw)) AS text FROM chunk_lines)",
            "lines AS (SELECT line_number, raw, CASE WHEN ends_with(text, chr(13)) "
            "THEN left(text, -1) ELSE text END AS line FROM decoded)",
            "flagged AS (SELECT line_number, raw, line, "
            "coalesce(regexp_full_match(line, '[ \\t\\f\\v\\r]*'), false) AS blank FROM lines)",
            "checked AS (SELECT *, NOT blank AND line IS NOT NULL AND json_valid(line) AND NOT ("
            f"regexp_matches(line, {_quote(LENIENT)}) AND regexp_matches(regexp_replace(line, "
            f"{_quote(STRING_LITERAL)}, '\"\"', 'g'), {_quote(LENIENT)})) AS is_json FROM flagged)",
            "typed AS (SELECT *, CASE WHEN is_json THEN json_type(line) END AS root_type "
            "FROM checked)",
        ]
        previous = "typed"
        for level, select in enumerate(levels):
            stages.append(f"level_{level} AS (SELECT *, {select} FROM {previous})")
            previous = f"level_{level}"
        return (
            "WITH "
            + ",\n".join(stages)
            + f"\nSELECT line_number, line, raw, flatten([{reason_list}]) AS shape_reasons, "
            + ", ".join(outputs)
            + f" FROM {previous} ORDER BY line_number"
        )

    def prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        """Define the JSON path once on `con`, as a view over whatever `chunk_lines` holds.

        Parsing and planning this SQL is a fixed cost per query, and the view keeps the parse,
        so a chunk pays only to execute it.
        """
        con.register("chunk_lines", LineChunk(1, pa.array([], pa.large_binary())).table())
        try:
            con.execute(f"CREATE OR REPLACE TEMP VIEW {PARSED_VIEW} AS {self.sql}")
        finally:
            con.unregister("chunk_lines")

    def _parse_sql(self, con: duckdb.DuckDBPyConnection, lines: pa.Table) -> pl.DataFrame:
        con.register("chunk_lines", lines)
        try:
            return pl.from_arrow(con.sql(f"SELECT * FROM {PARSED_VIEW}").to_arrow_table())
        finally:
            con.unregister("chunk_lines")

    def parse(self, con: duckdb.DuckDBPyConnection, chunk: LineChunk) -> pl.DataFrame:
        """Parse a chunk: the fast path where it matches, the JSON kernel elsewhere.

        `con` must have been through `prepare`.
        """
        try:
            text = chunk.raw.cast(pa.large_string())
        except pa.ArrowInvalid:
            # Some line is not UTF-8: let the SQL path decide line by line.
            return self._parse_sql(con, chunk.table())
        numbers = pl.int_range(
            chunk.first_line_number, chunk.first_line_number + len(chunk), eager=True
        )
        line = pl.from_arrow(text)
        # The line's exact bytes, for a rejected line's record: a view of the same buffers.
        raw = line.cast(pl.Binary)
        # Stripping copies every line, so only CRLF files pay for it. The fast pattern itself
        # allows the `\r` as trailing JSON white space.
        if line.str.ends_with("\r").any():
            line = line.str.strip_suffix("\r")
        frame = pl.DataFrame({"line_number": numbers, "line": line, "raw": raw})
        if self.locator is not None:
            _matched, fields = self.locator.locate(text)
            captured = pl.concat([frame, fields], how="horizontal")
        else:
            captured = frame.with_columns(
                pl.col("line").str.extract_groups(self.fast_pattern).alias("fast")
            ).unnest("fast")
        matched = pl.col(self.outputs[0]).is_not_null()
        # NULL shape_reasons: the fast path proved the shape, no list is built per line.
        fast = captured.filter(matched).select(
            "line_number",
            "line",
            "raw",
            pl.lit(None, pl.List(pl.String)).alias("shape_reasons"),
            *self.outputs,
        )
        if len(fast) == len(chunk):
            return fast
        rest = captured.select(matched.not_().alias("rest"))["rest"].to_arrow()
        slow_table = chunk.table().filter(rest)
        slow = self._parse_sql(con, slow_table)
        return pl.concat([fast, slow.select(fast.columns)], how="vertical_relaxed").sort(
            "line_number"
        )
