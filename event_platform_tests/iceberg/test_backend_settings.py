"""Choosing the warehouse backend: one variable, the Iceberg catalog required with it."""

from __future__ import annotations

import pytest

from event_platform.defs.resources import build_resources
from event_platform.settings import Settings, SettingsError

CATALOG = "postgresql+psycopg2://postgres@127.0.0.1:5432/catalog"


def test_the_duckdb_file_is_the_default(tmp_path) -> None:
    settings = Settings.from_env({"EVENT_PLATFORM_DATA_DIR": str(tmp_path)})
    assert settings.warehouse_backend == "duckdb"
    assert settings.iceberg_catalog_uri is None and settings.iceberg_location is None
    assert build_resources(settings)["duckdb"].backend == "duckdb"


def test_iceberg_is_chosen_with_its_catalog_and_a_default_location(tmp_path) -> None:
    settings = Settings.from_env(
        {
            "EVENT_PLATFORM_DATA_DIR": str(tmp_path),
            "EVENT_PLATFORM_WAREHOUSE": "iceberg",
            "EVENT_PLATFORM_ICEBERG_CATALOG_URI": CATALOG,
        }
    )
    assert settings.warehouse_backend == "iceberg"
    assert settings.iceberg_location == str(tmp_path / "iceberg")
    resource = build_resources(settings)["duckdb"]
    assert (resource.backend, resource.iceberg_catalog_uri) == ("iceberg", CATALOG)


def test_the_warehouse_is_described_without_the_catalogs_password(tmp_path) -> None:
    env = {"EVENT_PLATFORM_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(env).warehouse_description == str(tmp_path / "warehouse.duckdb")
    described = Settings.from_env(
        env
        | {
            "EVENT_PLATFORM_WAREHOUSE": "iceberg",
            "EVENT_PLATFORM_ICEBERG_CATALOG_URI": "postgresql+psycopg2://ice:s3cret@db:5432/cat",
            "EVENT_PLATFORM_ICEBERG_LOCATION": "gs://bucket/warehouse",
        }
    ).warehouse_description
    assert described == (
        "iceberg gs://bucket/warehouse (catalog postgresql+psycopg2://ice:***@db:5432/cat)"
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"EVENT_PLATFORM_WAREHOUSE": "ducklake"}, "EVENT_PLATFORM_WAREHOUSE='ducklake'"),
        ({"EVENT_PLATFORM_WAREHOUSE": "iceberg"}, "needs EVENT_PLATFORM_ICEBERG_CATALOG_URI"),
        (
            {"EVENT_PLATFORM_ICEBERG_CATALOG_URI": "sqlite:///catalog.db"},
            "EVENT_PLATFORM_ICEBERG_CATALOG_URI='sqlite:///catalog.db'",
        ),
    ],
)
def test_a_wrong_choice_fails_at_start_naming_the_variable(tmp_path, env, named) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env({"EVENT_PLATFORM_DATA_DIR": str(tmp_path), **env})
