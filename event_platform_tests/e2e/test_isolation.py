"""`make test` exports the developer's DAGSTER_HOME; the suite must never write there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from event_platform_tests.conftest import DEVELOPER_HOME, ROOT, event_line, write_lines


def test_commands_started_by_tests_use_the_sessions_instance(tmp_path: Path) -> None:
    """A command a test starts with the inherited environment (as the benchmark tests do) runs
    in the session's scratch instance, never in the one the developer's shell names."""
    path = write_lines(tmp_path / "ten.jsonl", [event_line(i) for i in range(10)])
    home = Path(os.environ["DAGSTER_HOME"])
    assert home != Path(DEVELOPER_HOME or ROOT / ".dagster_home")
    assert not home.is_relative_to(ROOT)
    script = str(Path(sys.executable).with_name("event-platform"))
    result = subprocess.run(
        [script, "ingest", "--json", str(path)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert any(home.iterdir()), "the command's runs went somewhere else"
    data = Path(os.environ["EVENT_PLATFORM_DATA_DIR"])
    assert (data / "landing" / "ten.jsonl").exists()
    assert not data.is_relative_to(ROOT)
