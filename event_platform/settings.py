"""The one place that reads configuration from the environment.

Every entry point (Dagster definitions, the CLI, the HTTP API, the Pub/Sub consumer) builds a
`Settings` from the environment, so a setting means the same thing everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

DEFAULT_DATA_DIR = "data"
# DuckDB's buffer pool defaults to 80% of RAM and caches the growing warehouse; capped, it
# spills to disk instead, which keeps an ingestion's memory flat as files and tables grow.
DEFAULT_DUCKDB_MEMORY_LIMIT = "256MB"
DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024
DEFAULT_SENSOR_INTERVAL_SECONDS = 2
# Events are a few hundred bytes; a line past this is rejected as `line_too_long` unparsed, so
# one runaway line neither fails its file nor takes memory in proportion to its length.
DEFAULT_MAX_LINE_BYTES = 1024 * 1024
# Reconciliation: by the line ledger and an independent sample, or by re-deriving every line
# (event_platform/reconcile/reconciliation.py).
RECONCILE_MODES = ("ledger", "full")
DEFAULT_RECONCILE_MODE = "ledger"
DEFAULT_RECONCILE_SAMPLE_LINES = 10_000


class ConfigError(ValueError):
    """A setting in the environment cannot be read; the message names the variable."""


def _read(env: Mapping[str, str], name: str, default: str, parse: Callable[[str], T]) -> T:
    text = env.get(name, default)
    try:
        return parse(text)
    except ValueError as error:
        raise ConfigError(f"{name}={text!r} is not valid ({error})") from None


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be at least 0")
    return value


def reconcile_mode(text: str) -> str:
    """A reconciliation mode by name, or a ValueError naming the modes."""
    if text not in RECONCILE_MODES:
        raise ValueError(f"must be one of {', '.join(RECONCILE_MODES)}")
    return text


def _int_set(text: str) -> frozenset[int]:
    """Parse `1-10` or `1,2,5-7` into a set of integers."""
    values: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part[1:]:
            low, high = part.split("-", 1) if not part.startswith("-") else part[1:].split("-", 1)
            values.update(range(int(low), int(high) + 1))
        else:
            values.add(int(part))
    if not values:
        raise ValueError(f"no event types in {text!r}")
    return frozenset(values)


@dataclass(frozen=True)
class Settings:
    """Runtime settings; see README's Configuration table for each variable."""

    data_dir: Path
    duckdb_path: Path
    allowed_event_types: frozenset[int] = field(default_factory=lambda: frozenset(range(1, 11)))
    rejection_warn_rate: float = 0.01
    rejection_error_rate: float = 0.05
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    freshness_hours: float = 24.0
    duckdb_memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT
    sensor_interval_seconds: int = DEFAULT_SENSOR_INTERVAL_SECONDS
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    reconcile_mode: str = DEFAULT_RECONCILE_MODE
    reconcile_sample_lines: int = DEFAULT_RECONCILE_SAMPLE_LINES

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def published_dir(self) -> Path:
        return self.data_dir / "published"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("EVENT_PLATFORM_DATA_DIR", DEFAULT_DATA_DIR)).expanduser()
        duckdb_path = Path(
            env.get("EVENT_PLATFORM_DUCKDB", str(data_dir / "warehouse.duckdb"))
        ).expanduser()
        return cls(
            data_dir=data_dir,
            duckdb_path=duckdb_path,
            allowed_event_types=_read(env, "EVENT_PLATFORM_EVENT_TYPES", "1-10", _int_set),
            rejection_warn_rate=_read(env, "EVENT_PLATFORM_REJECTION_WARN_RATE", "0.01", float),
            rejection_error_rate=_read(env, "EVENT_PLATFORM_REJECTION_ERROR_RATE", "0.05", float),
            chunk_bytes=_read(env, "EVENT_PLATFORM_CHUNK_BYTES", str(DEFAULT_CHUNK_BYTES), int),
            freshness_hours=_read(env, "EVENT_PLATFORM_FRESHNESS_HOURS", "24", float),
            duckdb_memory_limit=env.get(
                "EVENT_PLATFORM_DUCKDB_MEMORY_LIMIT", DEFAULT_DUCKDB_MEMORY_LIMIT
            ),
            sensor_interval_seconds=_read(
                env,
                "EVENT_PLATFORM_SENSOR_INTERVAL_SECONDS",
                str(DEFAULT_SENSOR_INTERVAL_SECONDS),
                _positive_int,
            ),
            max_line_bytes=_read(
                env, "EVENT_PLATFORM_MAX_LINE_BYTES", str(DEFAULT_MAX_LINE_BYTES), _positive_int
            ),
            reconcile_mode=_read(
                env, "EVENT_PLATFORM_RECONCILE_MODE", DEFAULT_RECONCILE_MODE, reconcile_mode
            ),
            reconcile_sample_lines=_read(
                env,
                "EVENT_PLATFORM_RECONCILE_SAMPLE_LINES",
                str(DEFAULT_RECONCILE_SAMPLE_LINES),
                _non_negative_int,
            ),
        )
