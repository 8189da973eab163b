"""Fixtures for the Iceberg backend: a PostgreSQL catalog database per test, created and
dropped here, and a temporary warehouse folder.

Skipped, with the reason, when pyiceberg (the `iceberg` extra) is not installed or no
PostgreSQL answers at EVENT_PLATFORM_TEST_POSTGRES (default 127.0.0.1:5432, user postgres).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

POSTGRES = os.environ.get("EVENT_PLATFORM_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


def iceberg_missing() -> str | None:
    """Why the Iceberg backend cannot be tested here, or None."""
    try:
        import psycopg2
        import pyiceberg  # noqa: F401
    except ImportError as exc:
        return f"the iceberg extra is not installed ({exc.name}): pip install -e '.[iceberg]'"
    try:
        import psycopg2

        psycopg2.connect(f"{POSTGRES}/postgres", connect_timeout=3).close()
    except Exception as exc:
        return f"no PostgreSQL for the Iceberg catalog at {POSTGRES}: {exc}".strip()
    return None


@pytest.fixture
def catalog_uri() -> Iterator[str]:
    """A fresh PostgreSQL database for one test's catalog, dropped afterwards."""
    reason = iceberg_missing()
    if reason:
        pytest.skip(reason)
    import psycopg2

    name = f"ep_iceberg_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(f"{POSTGRES}/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES.replace('postgresql://', 'postgresql+psycopg2://')}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def iceberg(catalog_uri: str, tmp_path: Path):
    from event_platform.store.iceberg.warehouse import IcebergWarehouse

    return IcebergWarehouse(catalog_uri, str(tmp_path / "iceberg"), scratch_dir=str(tmp_path))
