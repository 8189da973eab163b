"""The one settings tree, and the one reader of the environment.

Each entry point (the CLI, the Dagster definitions, the API app factory, the Pub/Sub consumer)
calls `Settings.from_env()` once and hands the result, or one of its sections, down; nothing
below an entry point reads the environment, so a setting means the same thing everywhere and a
bad value fails once, at start, with a `SettingsError` naming the variable and what it accepts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

DEFAULT_DATA_DIR = "data"
WAREHOUSE_FILE = "warehouse.duckdb"
CURRENT_SNAPSHOT = "current.duckdb"
DEFAULT_EVENT_TYPES: frozenset[int] = frozenset(range(1, 11))
# DuckDB's buffer pool defaults to 80% of RAM and caches the growing warehouse; capped, it
# spills to disk instead, which keeps an ingestion's memory flat as files and tables grow.
DEFAULT_DUCKDB_MEMORY_LIMIT = "256MB"
DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024
DEFAULT_SENSOR_INTERVAL_SECONDS = 2
# Events are a few hundred bytes; a line past this is rejected as `line_too_long` unparsed, so
# one runaway line neither fails its file nor takes memory in proportion to its length.
DEFAULT_MAX_LINE_BYTES = 1024 * 1024
# Reconciliation: by the line ledger and an independent sample, or by re-deriving every line
# (event_platform/reconcile/partition.py).
RECONCILE_MODES = ("ledger", "full")
DEFAULT_RECONCILE_MODE = "ledger"
DEFAULT_RECONCILE_SAMPLE_LINES = 10_000
# The parser's fast path: compiled C where the package was built with it, or the regex that says
# the same in polars (event_platform/ingest/fast_shape.py reads the variable itself).
PARSERS = ("native", "regex")
DEFAULT_PARSER = "native"
# Where the lineage stores: one DuckDB file (embedded, one writer), or Apache Iceberg tables in
# a PostgreSQL catalog (many writers; event_platform/store/backend.py).
WAREHOUSE_BACKENDS = ("duckdb", "iceberg")
DEFAULT_WAREHOUSE_BACKEND = "duckdb"
ICEBERG_FOLDER = "iceberg"

DEFAULT_API_HOST = "127.0.0.1"
DEFAULT_API_PORT = 8080
# A page is mostly DuckDB time, which releases the GIL, but the Python around it does not;
# one process per core served the large benchmark best.
DEFAULT_API_WORKERS = 2
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
# `pii`: unmasked personal data; `metrics`: may scrape /metrics (alone: nothing else).
KNOWN_SCOPES = frozenset({"pii", "metrics"})

DEFAULT_PUBSUB_PROJECT = "event-platform-local"

API_KEYS_VARIABLE = "EVENT_PLATFORM_API_KEYS"
API_KEYS_FORM = f"comma-separated key[:scope...] with scopes from {sorted(KNOWN_SCOPES)}"


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the variable and the accepted form."""

    @classmethod
    def invalid(cls, name: str, text: str | None, expected: str) -> SettingsError:
        """`text=None` hides the value: it may be a secret (API keys) that must not be logged."""
        shown = "(value hidden)" if text is None else repr(text)
        return cls(f"{name}={shown} is not valid: expected {expected}")


# ---- parse helpers: each returns a parser and the accepted form for the error message ----


def _integer(low: int, high: int | None = None) -> tuple[Callable[[str], int], str]:
    form = f"an integer {low}-{high}" if high is not None else f"an integer >= {low}"

    def parse(text: str) -> int:
        value = int(text)
        if value < low or (high is not None and value > high):
            raise ValueError(form)
        return value

    return parse, form


def _number(*, positive: bool = False) -> tuple[Callable[[str], float], str]:
    form = "a number > 0" if positive else "a number"

    def parse(text: str) -> float:
        value = float(text)
        if value != value or (positive and not value > 0):  # NaN passes every comparison
            raise ValueError(form)
        return value

    return parse, form


RECONCILE_MODE_FORM = f"one of {', '.join(RECONCILE_MODES)}"


def reconcile_mode(text: str) -> str:
    """A reconciliation mode by name, or a ValueError naming the modes."""
    if text not in RECONCILE_MODES:
        raise ValueError(RECONCILE_MODE_FORM)
    return text


WAREHOUSE_BACKEND_FORM = f"one of {', '.join(WAREHOUSE_BACKENDS)}"


PARSER_FORM = f"one of {', '.join(PARSERS)}"


def parser(text: str) -> str:
    if text not in PARSERS:
        raise ValueError(PARSER_FORM)
    return text


def warehouse_backend(text: str) -> str:
    if text not in WAREHOUSE_BACKENDS:
        raise ValueError(WAREHOUSE_BACKEND_FORM)
    return text


ICEBERG_CATALOG_FORM = "a SQLAlchemy PostgreSQL URI, postgresql+psycopg2://user[:password]@host/db"


def iceberg_catalog_uri(text: str) -> str:
    """The catalog's URI; PostgreSQL only, since the writers' advisory locks live there."""
    if not text.startswith(("postgresql+psycopg2://", "postgresql://")):
        raise ValueError(ICEBERG_CATALOG_FORM)
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
        raise ValueError("no event types")
    return frozenset(values)


INT_SET_FORM = "integers and ranges such as 1-10 or 1,2,5-7"


def parse_api_keys(text: str) -> dict[str, frozenset[str]]:
    """`k1:pii,k2` -> {"k1": {"pii"}, "k2": {}}; unknown scopes fail loudly rather than grant.

    The error never repeats the value: it holds the keys themselves.
    """
    keys: dict[str, frozenset[str]] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, *scopes = item.split(":")
        wanted = frozenset(scope.strip() for scope in scopes if scope.strip())
        unknown = wanted - KNOWN_SCOPES
        if not key.strip():
            raise SettingsError.invalid(
                API_KEYS_VARIABLE, None, f"{API_KEYS_FORM} (a key is empty)"
            )
        if unknown:
            raise SettingsError.invalid(
                API_KEYS_VARIABLE, None, f"{API_KEYS_FORM} (unknown scope {sorted(unknown)})"
            )
        keys[key.strip()] = wanted
    return keys


def _read(
    env: Mapping[str, str], name: str, default: T, parser: tuple[Callable[[str], T], str]
) -> T:
    """The variable parsed, or its default when unset (an empty value is a value, and wrong)."""
    text = env.get(name)
    if text is None:
        return default
    parse, form = parser
    try:
        return parse(text)
    except ValueError:
        raise SettingsError.invalid(name, text, form) from None


def _text(env: Mapping[str, str], name: str, default: str) -> str:
    return env.get(name) or default


def _optional(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name) or None


def _path(env: Mapping[str, str], name: str, default: Path) -> Path:
    text = env.get(name)
    return Path(text).expanduser() if text else default


# ---- the sections ----


@dataclass(frozen=True)
class ApiSettings:
    """Where the API reads from, who may call it and where it listens.

    `landing_dir` and `warehouse_path` only feed /metrics (pending files, the warehouse's size,
    by stat, never opened); a test may leave them out.
    """

    snapshot_path: Path
    api_keys: Mapping[str, frozenset[str]] = field(default_factory=dict)
    host: str = DEFAULT_API_HOST
    port: int = DEFAULT_API_PORT
    workers: int = DEFAULT_API_WORKERS
    landing_dir: Path | None = None
    warehouse_path: Path | None = None

    def check_bind(self) -> None:
        """Refuse a non-loopback bind without keys: anyone on the network could read the data."""
        if not 0 < self.port < 65536:
            raise SettingsError(f"port {self.port} is out of range: expected an integer 1-65535")
        if self.workers < 1:
            raise SettingsError(f"workers {self.workers} is not valid: expected an integer >= 1")
        if not self.api_keys and self.host not in LOOPBACK_HOSTS:
            raise SettingsError(
                f"refusing to listen on {self.host!r} without API keys; set "
                f"{API_KEYS_VARIABLE} (e.g. 'key1:pii,key2') or bind 127.0.0.1"
            )


@dataclass(frozen=True)
class PubSubSettings:
    """Where to pull from, how big a micro-batch file may grow, and where it lands.

    The same values drive the emulator locally (`PUBSUB_EMULATOR_HOST` set, read by the Google
    client itself) and GCP in production (unset: Application Default Credentials).
    """

    project: str
    topic: str | None
    subscription: str | None
    landing_dir: Path
    state_dir: Path
    batch_max_messages: int = 1000
    batch_max_seconds: float = 2.0
    max_delivery_attempts: int = 5
    dead_letter_topic: str | None = None
    ack_deadline_seconds: int = 60
    # A sensor tick is killed at 60 s; the drain stops starting new batches after this budget.
    sensor_drain_seconds: float = 30.0
    # The backlog check warns when the oldest message waited longer than this before we pulled it.
    max_message_age_seconds: float = 600.0

    @property
    def dead_letter_topic_name(self) -> str | None:
        """Explicit name, else `<topic>-dead-letter`: a policy without a topic is no policy."""
        if self.dead_letter_topic:
            return self.dead_letter_topic
        return f"{self.topic}-dead-letter" if self.topic else None

    @property
    def dead_letter_subscription_name(self) -> str | None:
        """Pub/Sub drops messages published to a topic with no subscription; this keeps them."""
        name = self.dead_letter_topic_name
        return f"{name}-sub" if name else None

    @property
    def status_path(self) -> Path | None:
        """Counters shared by the sensor, the standalone consumer and the observation."""
        if not self.subscription:
            return None
        return self.state_dir / f"{self.subscription}.status.json"


@dataclass(frozen=True)
class Settings:
    """The whole tree; see README's Configuration table for each variable."""

    data_dir: Path
    duckdb_path: Path
    api: ApiSettings
    pubsub: PubSubSettings
    allowed_event_types: frozenset[int] = DEFAULT_EVENT_TYPES
    rejection_warn_rate: float = 0.01
    rejection_error_rate: float = 0.05
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    freshness_hours: float = 24.0
    duckdb_memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT
    sensor_interval_seconds: int = DEFAULT_SENSOR_INTERVAL_SECONDS
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    reconcile_mode: str = DEFAULT_RECONCILE_MODE
    reconcile_sample_lines: int = DEFAULT_RECONCILE_SAMPLE_LINES
    parser: str = DEFAULT_PARSER
    warehouse_backend: str = DEFAULT_WAREHOUSE_BACKEND
    # The Iceberg backend's catalog (None with the DuckDB backend) and its data files' root:
    # a folder, or `gs://bucket/prefix` with the `gcs` extra.
    iceberg_catalog_uri: str | None = None
    iceberg_location: str | None = None
    # How many `event-platform ingest` runs write to Iceberg at once from one data dir
    # (0: no limit); the DuckDB backend always has one writer.
    iceberg_writers: int = 0

    @property
    def landing_dir(self) -> Path:
        return _landing(self.data_dir)

    @property
    def warehouse_description(self) -> str:
        """Where the lineage stores, for people: the DuckDB file, or the Iceberg location and
        catalog (without its password)."""
        if self.warehouse_backend != "iceberg":
            return str(self.duckdb_path)
        catalog = _without_password(self.iceberg_catalog_uri)
        return f"iceberg {self.iceberg_location} (catalog {catalog})"

    @property
    def published_dir(self) -> Path:
        return _published(self.data_dir)

    @property
    def pubsub_state_dir(self) -> Path:
        return _pubsub_state(self.data_dir)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        data_dir = _path(env, "EVENT_PLATFORM_DATA_DIR", Path(DEFAULT_DATA_DIR))
        duckdb_path = _path(env, "EVENT_PLATFORM_DUCKDB", data_dir / WAREHOUSE_FILE)
        api = _api_section(env, data_dir, duckdb_path)
        pubsub = _pubsub_section(env, data_dir)
        backend, catalog, location, writers = _warehouse_section(env, data_dir)
        return cls(
            data_dir=data_dir,
            duckdb_path=duckdb_path,
            warehouse_backend=backend,
            iceberg_catalog_uri=catalog,
            iceberg_location=location,
            iceberg_writers=writers,
            api=api,
            pubsub=pubsub,
            allowed_event_types=_read(
                env, "EVENT_PLATFORM_EVENT_TYPES", DEFAULT_EVENT_TYPES, (_int_set, INT_SET_FORM)
            ),
            rejection_warn_rate=_read(env, "EVENT_PLATFORM_REJECTION_WARN_RATE", 0.01, _number()),
            rejection_error_rate=_read(env, "EVENT_PLATFORM_REJECTION_ERROR_RATE", 0.05, _number()),
            chunk_bytes=_read(env, "EVENT_PLATFORM_CHUNK_BYTES", DEFAULT_CHUNK_BYTES, _integer(1)),
            freshness_hours=_read(env, "EVENT_PLATFORM_FRESHNESS_HOURS", 24.0, _number()),
            duckdb_memory_limit=_text(
                env, "EVENT_PLATFORM_DUCKDB_MEMORY_LIMIT", DEFAULT_DUCKDB_MEMORY_LIMIT
            ),
            sensor_interval_seconds=_read(
                env,
                "EVENT_PLATFORM_SENSOR_INTERVAL_SECONDS",
                DEFAULT_SENSOR_INTERVAL_SECONDS,
                _integer(1),
            ),
            max_line_bytes=_read(
                env, "EVENT_PLATFORM_MAX_LINE_BYTES", DEFAULT_MAX_LINE_BYTES, _integer(1)
            ),
            reconcile_mode=_read(
                env,
                "EVENT_PLATFORM_RECONCILE_MODE",
                DEFAULT_RECONCILE_MODE,
                (reconcile_mode, RECONCILE_MODE_FORM),
            ),
            reconcile_sample_lines=_read(
                env,
                "EVENT_PLATFORM_RECONCILE_SAMPLE_LINES",
                DEFAULT_RECONCILE_SAMPLE_LINES,
                _integer(0),
            ),
            parser=_read(env, "EVENT_PLATFORM_PARSER", DEFAULT_PARSER, (parser, PARSER_FORM)),
        )


def _without_password(uri: str | None) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri or "")
    if parts.password is None:
        return uri or ""
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _api_section(env: Mapping[str, str], data_dir: Path, duckdb_path: Path) -> ApiSettings:
    return ApiSettings(
        snapshot_path=_path(
            env, "EVENT_PLATFORM_API_SNAPSHOT", _published(data_dir) / CURRENT_SNAPSHOT
        ),
        api_keys=parse_api_keys(env.get(API_KEYS_VARIABLE, "")),
        host=_text(env, "EVENT_PLATFORM_API_HOST", DEFAULT_API_HOST),
        port=_read(env, "EVENT_PLATFORM_API_PORT", DEFAULT_API_PORT, _integer(1, 65535)),
        workers=_read(env, "EVENT_PLATFORM_API_WORKERS", DEFAULT_API_WORKERS, _integer(1)),
        landing_dir=_landing(data_dir),
        warehouse_path=duckdb_path,
    )


def _pubsub_section(env: Mapping[str, str], data_dir: Path) -> PubSubSettings:
    return PubSubSettings(
        project=_text(env, "EVENT_PLATFORM_PUBSUB_PROJECT", DEFAULT_PUBSUB_PROJECT),
        topic=_optional(env, "EVENT_PLATFORM_PUBSUB_TOPIC"),
        subscription=_optional(env, "EVENT_PLATFORM_PUBSUB_SUBSCRIPTION"),
        landing_dir=_landing(data_dir),
        state_dir=_pubsub_state(data_dir),
        batch_max_messages=_read(
            env, "EVENT_PLATFORM_PUBSUB_BATCH_MAX_MESSAGES", 1000, _integer(1)
        ),
        batch_max_seconds=_read(
            env, "EVENT_PLATFORM_PUBSUB_BATCH_MAX_SECONDS", 2.0, _number(positive=True)
        ),
        # Pub/Sub's own bounds for a dead-letter policy and for an ack deadline.
        max_delivery_attempts=_read(
            env, "EVENT_PLATFORM_PUBSUB_MAX_DELIVERY_ATTEMPTS", 5, _integer(5, 100)
        ),
        dead_letter_topic=_optional(env, "EVENT_PLATFORM_PUBSUB_DEAD_LETTER_TOPIC"),
        ack_deadline_seconds=_read(
            env, "EVENT_PLATFORM_PUBSUB_ACK_DEADLINE_SECONDS", 60, _integer(10, 600)
        ),
        sensor_drain_seconds=_read(
            env, "EVENT_PLATFORM_PUBSUB_SENSOR_DRAIN_SECONDS", 30.0, _number(positive=True)
        ),
        max_message_age_seconds=_read(
            env, "EVENT_PLATFORM_PUBSUB_MAX_MESSAGE_AGE_SECONDS", 600.0, _number(positive=True)
        ),
    )


def _warehouse_section(
    env: Mapping[str, str], data_dir: Path
) -> tuple[str, str | None, str | None, int]:
    """The backend, and for Iceberg its catalog URI, location and concurrent CLI writers."""
    backend = _read(
        env,
        "EVENT_PLATFORM_WAREHOUSE",
        DEFAULT_WAREHOUSE_BACKEND,
        (warehouse_backend, WAREHOUSE_BACKEND_FORM),
    )
    catalog = _read(
        env,
        "EVENT_PLATFORM_ICEBERG_CATALOG_URI",
        None,
        (iceberg_catalog_uri, ICEBERG_CATALOG_FORM),
    )
    if backend == "iceberg" and catalog is None:
        raise SettingsError(
            "EVENT_PLATFORM_WAREHOUSE=iceberg needs EVENT_PLATFORM_ICEBERG_CATALOG_URI: "
            f"expected {ICEBERG_CATALOG_FORM}"
        )
    location = _text(env, "EVENT_PLATFORM_ICEBERG_LOCATION", str(data_dir / ICEBERG_FOLDER))
    writers = _read(env, "EVENT_PLATFORM_ICEBERG_WRITERS", 0, _integer(0))
    return backend, catalog, location if backend == "iceberg" else None, writers


def _landing(data_dir: Path) -> Path:
    """Where files wait to be ingested; the one derivation every consumer of a data dir uses."""
    return Path(data_dir) / "landing"


def _published(data_dir: Path) -> Path:
    """Where the API's immutable snapshots and `current.duckdb` live."""
    return Path(data_dir) / "published"


def _pubsub_state(data_dir: Path) -> Path:
    """The consumer's status files, next to the data they describe."""
    return Path(data_dir) / "pubsub"
