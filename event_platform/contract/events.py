"""The default stream: the classic event take-home record.

`{"event_type": 7, "event_time": "2019-01-04 05:07:26",
  "data": {"user_email": "TAFgZ@gmail.com", "phone_number": "0603728764"},
  "processing_date": "2019-01-04"}`

Regexes spell digits as `[0-9]`: `\\d` matches non-ASCII digits in both polars and Python.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from event_platform.contract.spec import FieldSpec, StreamContract

EVENT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DATE_FORMAT = "%Y-%m-%d"
# Years 0001-9999: polars parses year 0000, but the calendar has no year 0 and DuckDB stores
# and renders it as 0001 (BC), so such an event could never reconcile with its line.
YEAR_SHAPE = r"(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
# Hours, minutes and seconds are bounded here: polars parses 23:59:60 as a leap second.
EVENT_TIME_SHAPE = (
    rf"^{YEAR_SHAPE}-[0-9]{{2}}-[0-9]{{2}} (?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"
)
DATE_SHAPE = rf"^{YEAR_SHAPE}-[0-9]{{2}}-[0-9]{{2}}$"
EMAIL_SHAPE = r"^[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}$"
PHONE_SHAPE = r"^[0-9]{6,15}$"

FIELDS = (
    FieldSpec("event_type", "integer"),
    FieldSpec("event_time", "string"),
    FieldSpec("data", "object"),
    FieldSpec("data.user_email", "string"),
    FieldSpec("data.phone_number", "string"),
    FieldSpec("processing_date", "string"),
)


def _matches_calendar(shape: str, fmt: str, *, is_datetime: bool) -> pa.Check:
    """Exact textual shape AND a real calendar value (Feb 30 and 23:59:60 fail)."""

    def check(data: pa.PolarsData) -> pl.LazyFrame:
        text = pl.col(data.key)
        parsed = (
            text.str.to_datetime(fmt, strict=False, time_unit="us", cache=False)
            if is_datetime
            else text.str.to_date(fmt, strict=False, cache=False)
        )
        # NULL means "absent or not a string": the parser already gave that line its reason.
        return data.lazyframe.select(
            text.is_null() | (text.str.contains(shape) & parsed.is_not_null())
        )

    return pa.Check(check, name="invalid_format")


def _full_match(pattern: str) -> pa.Check:
    def check(data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).str.contains(pattern))

    return pa.Check(check, name="invalid_format")


def _in_set(allowed: frozenset[int]) -> pa.Check:
    # Compared as canonical integer literals, so a 30-digit integer is out of range, not an error.
    literals = sorted(str(value) for value in allowed)

    def check(data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).is_in(literals))

    return pa.Check(check, name="out_of_range")


def value_schema(allowed_event_types: frozenset[int]) -> pa.DataFrameSchema:
    """Value rules over text extracted by the parser; null means the shape check already failed."""
    text = {"dtype": pl.String, "nullable": True}
    return pa.DataFrameSchema(
        {
            "event_type": pa.Column(checks=[_in_set(allowed_event_types)], **text),
            "event_time": pa.Column(
                checks=[_matches_calendar(EVENT_TIME_SHAPE, EVENT_TIME_FORMAT, is_datetime=True)],
                **text,
            ),
            "processing_date": pa.Column(
                checks=[_matches_calendar(DATE_SHAPE, DATE_FORMAT, is_datetime=False)], **text
            ),
            "user_email": pa.Column(checks=[_full_match(EMAIL_SHAPE)], **text),
            "phone_number": pa.Column(checks=[_full_match(PHONE_SHAPE)], **text),
        },
        name="events",
    )


TYPED_COLUMNS = (
    pl.col("event_type").cast(pl.Int32),
    # No parse cache: event times are nearly all distinct, so polars' cache cost more than it saved.
    pl.col("event_time").str.to_datetime(EVENT_TIME_FORMAT, time_unit="us", cache=False),
    pl.col("processing_date").str.to_date(DATE_FORMAT, cache=False),
    pl.col("user_email"),
    pl.col("phone_number"),
)

# One event rendered canonically: fields joined by the ASCII unit separator (0x1F), which the
# contract forbids in every field, so two different events never render alike. It is written
# over the checked text, not the typed values: a valid line's text is already the canonical
# rendering (an integer literal from the allowed set, the exact `YYYY-MM-DD HH:MM:SS` and
# `YYYY-MM-DD` forms of a real date), so formatting the parsed values back would only repeat
# it at a cost. CANONICAL_SQL renders the stored, typed columns; a test pins
# the two together over edge values, and reconciliation compares them on every stored row.
# CANONICAL_SQL casts rather than formats: DuckDB renders whole-second values in exactly those
# forms, and a stored time that is not whole seconds shows its fraction, so it cannot hash like
# a line of the file (`strftime` to seconds hid it).
CANONICAL = pl.concat_str(
    "event_type", "event_time", "processing_date", "user_email", "phone_number", separator="\x1f"
)
CANONICAL_SQL = (
    "concat_ws(chr(31), CAST(event_type AS VARCHAR), CAST(event_time AS VARCHAR), "
    "CAST(processing_date AS VARCHAR), user_email, phone_number)"
)

EVENTS_CONTRACT = StreamContract(
    name="events",
    fields=FIELDS,
    value_schema=value_schema,
    typed_columns=TYPED_COLUMNS,
    canonical=CANONICAL,
    canonical_sql=CANONICAL_SQL,
)
