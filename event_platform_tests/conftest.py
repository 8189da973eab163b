"""Shared fixtures: an isolated data folder and warehouse per test, and a record builder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from event_platform.settings import Settings

# The Pub/Sub emulator fixtures (`emulator`, `pubsub`) and the Iceberg catalog's (`catalog_uri`,
# `iceberg`, `backend`) live in modules of their own.
pytest_plugins = [
    "event_platform_tests.pubsub_emulator",
    "event_platform_tests.iceberg_catalog",
]

ROOT = Path(__file__).resolve().parents[1]
# What the developer's shell points at (`make test` exports the Makefile's DAGSTER_HOME).
DEVELOPER_HOME = os.environ.get("DAGSTER_HOME")


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    if not folder.is_dir():
        return {}
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in folder.rglob("*")
        if path.is_file()
    }


@pytest.fixture(scope="session", autouse=True)
def isolated_from_the_developer(tmp_path_factory: pytest.TempPathFactory):
    """No test, and no command or benchmark a test starts, touches the developer's instance or
    data folder: the session points DAGSTER_HOME and the data folder at a scratch folder, which
    every subprocess inherits, and fails if the developer's folders changed meanwhile."""
    watched = [ROOT / ".dagster_home", ROOT / "data"]
    if DEVELOPER_HOME:
        watched.append(Path(DEVELOPER_HOME))
    before = {folder: _listing(folder) for folder in watched}
    scratch = tmp_path_factory.mktemp("session")
    (scratch / "dagster_home").mkdir()
    os.environ["DAGSTER_HOME"] = str(scratch / "dagster_home")
    os.environ["EVENT_PLATFORM_DATA_DIR"] = str(scratch / "data")
    os.environ.pop("EVENT_PLATFORM_DUCKDB", None)
    yield scratch
    changed = [str(folder) for folder in watched if _listing(folder) != before[folder]]
    assert not changed, f"tests changed the developer's folders: {changed}"


BASE_EVENT = {
    "event_type": 7,
    "event_time": "2019-01-04 05:07:26",
    "data": {"user_email": "TAFgZ@gmail.com", "phone_number": "0603728764"},
    "processing_date": "2019-01-04",
}


def event_line(index: int = 0, **overrides: object) -> str:
    """A valid record (unique per index) with top-level or `data.x` overrides."""
    record = json.loads(json.dumps(BASE_EVENT))
    record["data"]["user_email"] = f"user{index}@example.com"
    record["data"]["phone_number"] = f"06{index:08d}"
    for key, value in overrides.items():
        if key.startswith("data."):
            record["data"][key.removeprefix("data.")] = value
        else:
            record[key] = value
    return json.dumps(record)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    data_dir = tmp_path / "data"
    monkeypatch.setenv("EVENT_PLATFORM_DATA_DIR", str(data_dir))
    monkeypatch.delenv("EVENT_PLATFORM_DUCKDB", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    settings = Settings.from_env()
    settings.landing_dir.mkdir(parents=True)
    return settings


def write_lines(path: Path, lines: list[str], *, newline: str = "\n", final: bool = True) -> Path:
    text = newline.join(lines) + (newline if final and lines else "")
    path.write_bytes(text.encode())
    return path


def contradict_truth(truth_path: Path) -> None:
    """Make a generated file's truth claim one more valid event: the data file stays as it was,
    so a benchmark that checks itself must now report a wrong result."""
    truth = json.loads(truth_path.read_text())
    truth["valid"] += 1
    truth_path.write_text(json.dumps(truth))


def assert_refuses_a_contradicted_truth(
    run: Callable[[], subprocess.CompletedProcess[str]], truth_path: Path
) -> None:
    """A benchmark that checks itself: fine on its generated file, then exit 1 once the truth
    beside that file (`truth_path`) claims one more valid event."""
    assert run().returncode == 0
    contradict_truth(truth_path)
    completed = run()
    assert completed.returncode == 1
    assert "did not match the truth file" in completed.stderr


def run_benchmark(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m benchmarks.<name>` as a user does, from the project root; never raises on
    exit 1."""
    root = Path(__file__).resolve().parents[1]
    return subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", *args],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=600,
        check=False,
    )


@pytest.fixture
def postgres_database(monkeypatch: pytest.MonkeyPatch):
    """A database of its own on the local PostgreSQL, named in DAGSTER_PG_*; dropped after."""
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    except psycopg2.OperationalError as error:
        pytest.skip(f"PostgreSQL is not reachable on 127.0.0.1:5432: {error}")
    admin.autocommit = True
    name = f"event_platform_test_{uuid.uuid4().hex[:8]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    for key, value in {
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": "5432",
        "DAGSTER_PG_USER": "postgres",
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": name,
    }.items():
        monkeypatch.setenv(key, value)
    yield name
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.close()
