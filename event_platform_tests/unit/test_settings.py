"""The settings tree: every variable parsed, its default, and errors that say what to write."""

from __future__ import annotations

from pathlib import Path

import pytest

from event_platform.settings import (
    DEFAULT_CHUNK_BYTES,
    DEFAULT_DUCKDB_MEMORY_LIMIT,
    DEFAULT_EVENT_TYPES,
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_SENSOR_INTERVAL_SECONDS,
    ApiSettings,
    Settings,
    SettingsError,
    parse_api_keys,
)

EVERY_VARIABLE = {
    "EVENT_PLATFORM_DATA_DIR": "/srv/data",
    "EVENT_PLATFORM_DUCKDB": "/srv/wh.duckdb",
    "EVENT_PLATFORM_EVENT_TYPES": "1,3, 5-7",
    "EVENT_PLATFORM_REJECTION_WARN_RATE": "0.02",
    "EVENT_PLATFORM_REJECTION_ERROR_RATE": "0.1",
    "EVENT_PLATFORM_CHUNK_BYTES": "4096",
    "EVENT_PLATFORM_FRESHNESS_HOURS": "1.5",
    "EVENT_PLATFORM_DUCKDB_MEMORY_LIMIT": "1GB",
    "EVENT_PLATFORM_SENSOR_INTERVAL_SECONDS": "7",
    "EVENT_PLATFORM_MAX_LINE_BYTES": "2048",
    "EVENT_PLATFORM_API_SNAPSHOT": "/srv/snap.duckdb",
    "EVENT_PLATFORM_API_KEYS": "k1:pii:metrics, k2",
    "EVENT_PLATFORM_API_HOST": "0.0.0.0",
    "EVENT_PLATFORM_API_PORT": "9000",
    "EVENT_PLATFORM_API_WORKERS": "4",
    "EVENT_PLATFORM_PUBSUB_PROJECT": "proj",
    "EVENT_PLATFORM_PUBSUB_TOPIC": "events",
    "EVENT_PLATFORM_PUBSUB_SUBSCRIPTION": "events-sub",
    "EVENT_PLATFORM_PUBSUB_BATCH_MAX_MESSAGES": "50",
    "EVENT_PLATFORM_PUBSUB_BATCH_MAX_SECONDS": "0.5",
    "EVENT_PLATFORM_PUBSUB_MAX_DELIVERY_ATTEMPTS": "7",
    "EVENT_PLATFORM_PUBSUB_DEAD_LETTER_TOPIC": "dlq",
    "EVENT_PLATFORM_PUBSUB_ACK_DEADLINE_SECONDS": "30",
    "EVENT_PLATFORM_PUBSUB_SENSOR_DRAIN_SECONDS": "12",
    "EVENT_PLATFORM_PUBSUB_MAX_MESSAGE_AGE_SECONDS": "60",
}


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(EVERY_VARIABLE)
    assert settings.data_dir == Path("/srv/data")
    assert settings.duckdb_path == Path("/srv/wh.duckdb")
    assert settings.allowed_event_types == frozenset({1, 3, 5, 6, 7})
    assert (settings.rejection_warn_rate, settings.rejection_error_rate) == (0.02, 0.1)
    assert (settings.chunk_bytes, settings.max_line_bytes) == (4096, 2048)
    assert settings.freshness_hours == 1.5
    assert settings.duckdb_memory_limit == "1GB"
    assert settings.sensor_interval_seconds == 7
    assert settings.api == ApiSettings(
        snapshot_path=Path("/srv/snap.duckdb"),
        api_keys={"k1": frozenset({"pii", "metrics"}), "k2": frozenset()},
        host="0.0.0.0",
        port=9000,
        workers=4,
        landing_dir=Path("/srv/data/landing"),
        warehouse_path=Path("/srv/wh.duckdb"),
    )
    pubsub = settings.pubsub
    assert (pubsub.project, pubsub.topic, pubsub.subscription) == ("proj", "events", "events-sub")
    assert (pubsub.batch_max_messages, pubsub.batch_max_seconds) == (50, 0.5)
    assert (pubsub.max_delivery_attempts, pubsub.ack_deadline_seconds) == (7, 30)
    assert pubsub.dead_letter_topic_name == "dlq"
    assert (pubsub.sensor_drain_seconds, pubsub.max_message_age_seconds) == (12.0, 60.0)
    assert pubsub.landing_dir == settings.landing_dir
    assert pubsub.status_path == Path("/srv/data/pubsub/events-sub.status.json")


def test_defaults_and_the_folders_derived_from_the_data_dir() -> None:
    settings = Settings.from_env({})
    data = Path("data")
    assert settings.data_dir == data
    assert settings.duckdb_path == data / "warehouse.duckdb"
    assert settings.landing_dir == data / "landing"
    assert settings.published_dir == data / "published"
    assert settings.pubsub_state_dir == data / "pubsub"
    assert settings.allowed_event_types == DEFAULT_EVENT_TYPES == frozenset(range(1, 11))
    assert (settings.rejection_warn_rate, settings.rejection_error_rate) == (0.01, 0.05)
    assert settings.chunk_bytes == DEFAULT_CHUNK_BYTES
    assert settings.max_line_bytes == DEFAULT_MAX_LINE_BYTES
    assert settings.freshness_hours == 24.0
    assert settings.duckdb_memory_limit == DEFAULT_DUCKDB_MEMORY_LIMIT
    assert settings.sensor_interval_seconds == DEFAULT_SENSOR_INTERVAL_SECONDS
    api = settings.api
    assert api.snapshot_path == data / "published" / "current.duckdb"
    assert (api.api_keys, api.host, api.port, api.workers) == ({}, "127.0.0.1", 8080, 2)
    assert (api.landing_dir, api.warehouse_path) == (settings.landing_dir, settings.duckdb_path)
    pubsub = settings.pubsub
    assert (pubsub.project, pubsub.topic, pubsub.subscription) == (
        "event-platform-local",
        None,
        None,
    )
    assert (pubsub.batch_max_messages, pubsub.batch_max_seconds) == (1000, 2.0)
    assert (pubsub.max_delivery_attempts, pubsub.ack_deadline_seconds) == (5, 60)
    assert (pubsub.sensor_drain_seconds, pubsub.max_message_age_seconds) == (30.0, 600.0)
    assert pubsub.state_dir == settings.pubsub_state_dir
    assert pubsub.status_path is None and pubsub.dead_letter_topic_name is None


def test_the_warehouse_and_snapshot_follow_the_data_dir() -> None:
    settings = Settings.from_env({"EVENT_PLATFORM_DATA_DIR": "/d"})
    assert settings.duckdb_path == Path("/d/warehouse.duckdb")
    assert settings.api.snapshot_path == Path("/d/published/current.duckdb")
    assert settings.pubsub.landing_dir == Path("/d/landing")


@pytest.mark.parametrize(
    ("name", "value", "form"),
    [
        ("EVENT_PLATFORM_EVENT_TYPES", "a-b", "integers and ranges such as 1-10 or 1,2,5-7"),
        ("EVENT_PLATFORM_EVENT_TYPES", " , ", "integers and ranges such as 1-10 or 1,2,5-7"),
        ("EVENT_PLATFORM_REJECTION_WARN_RATE", "lots", "a number"),
        ("EVENT_PLATFORM_REJECTION_ERROR_RATE", "nan", "a number"),
        ("EVENT_PLATFORM_CHUNK_BYTES", "0", "an integer >= 1"),
        ("EVENT_PLATFORM_FRESHNESS_HOURS", "", "a number"),
        ("EVENT_PLATFORM_SENSOR_INTERVAL_SECONDS", "0", "an integer >= 1"),
        ("EVENT_PLATFORM_MAX_LINE_BYTES", "1MB", "an integer >= 1"),
        ("EVENT_PLATFORM_PARSER", "simd", "one of native, regex"),
        ("EVENT_PLATFORM_API_PORT", "x", "an integer 1-65535"),
        ("EVENT_PLATFORM_API_PORT", "70000", "an integer 1-65535"),
        ("EVENT_PLATFORM_API_WORKERS", "two", "an integer >= 1"),
        ("EVENT_PLATFORM_PUBSUB_BATCH_MAX_MESSAGES", "0", "an integer >= 1"),
        ("EVENT_PLATFORM_PUBSUB_BATCH_MAX_SECONDS", "-1", "a number > 0"),
        ("EVENT_PLATFORM_PUBSUB_MAX_DELIVERY_ATTEMPTS", "4", "an integer 5-100"),
        ("EVENT_PLATFORM_PUBSUB_ACK_DEADLINE_SECONDS", "601", "an integer 10-600"),
        ("EVENT_PLATFORM_PUBSUB_SENSOR_DRAIN_SECONDS", "0", "a number > 0"),
        ("EVENT_PLATFORM_PUBSUB_MAX_MESSAGE_AGE_SECONDS", "soon", "a number > 0"),
    ],
)
def test_an_error_names_the_variable_the_value_and_the_accepted_form(
    name: str, value: str, form: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({name: value})
    assert str(raised.value) == f"{name}={value!r} is not valid: expected {form}"


@pytest.mark.parametrize("value", ["s3cret:admin", ":pii", "ok, s3cret:pii:root"])
def test_a_bad_api_key_list_is_named_but_never_echoed(value: str) -> None:
    with pytest.raises(SettingsError, match="EVENT_PLATFORM_API_KEYS") as raised:
        Settings.from_env({"EVENT_PLATFORM_API_KEYS": value})
    assert "s3cret" not in str(raised.value)
    assert "key[:scope...]" in str(raised.value)
    with pytest.raises(SettingsError):
        parse_api_keys(value)


def test_the_bind_check_is_a_settings_error(tmp_path: Path) -> None:
    exposed = ApiSettings(snapshot_path=tmp_path / "current.duckdb", host="0.0.0.0")
    with pytest.raises(SettingsError, match="EVENT_PLATFORM_API_KEYS"):
        exposed.check_bind()
    with pytest.raises(SettingsError, match="expected an integer >= 1"):
        ApiSettings(snapshot_path=tmp_path / "current.duckdb", workers=0).check_bind()


READER_CALLS = ('environ.get("EVENT_PLATFORM_', 'getenv("EVENT_PLATFORM_', "Settings.from_env(")


def test_nothing_else_reads_the_environment() -> None:
    """Only the entry points build settings, and nothing parses a variable outside settings.py."""
    root = Path(__file__).resolve().parents[2] / "event_platform"
    readers = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if path.name != "settings.py"
        and any(
            call in path.read_text()
            for call in (
                'environ.get("EVENT_PLATFORM_',
                'getenv("EVENT_PLATFORM_',
                "Settings.from_env(",
            )
        )
    ]
    # The entry points: the API's uvicorn factory, the code location and the CLI.
    assert sorted(readers) == ["api/app.py", "cli/main.py", "definitions.py"]
