"""The Makefile's first screen: a new user is told what is happening and why a check is red."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from event_platform_tests.conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_installing_says_so_before_the_long_silent_part(tmp_path: Path) -> None:
    planned = make("-n", "install", f"VENV={tmp_path / 'venv'}", env=dict(os.environ))
    first = planned.stdout.splitlines()[0]
    assert first.startswith("echo") and "installing event_platform" in first


def test_the_demo_explains_its_red_check(tmp_path: Path) -> None:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home")}
    env["EVENT_PLATFORM_DATA_DIR"] = str(tmp_path / "data")
    result = make("demo", f"VENV={ROOT / '.venv'}", env=env)
    assert result.returncode == 0, result.stderr
    assert "check rejection_rate (WARN) failed on rejected_events: " in result.stdout
    assert "fails by design" in result.stdout
    assert "published snapshot-" in result.stdout
