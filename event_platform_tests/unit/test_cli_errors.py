"""What the CLI prints when its input changes under it: one line, exit 1, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from event_platform.cli import ingest as ingest_command
from event_platform.cli.main import main
from event_platform.ingest.lines import FileChangedError


def test_a_file_changed_during_a_command_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    message = f"{tmp_path / 'a.jsonl'} changed while it was being reconciled; reconcile it again"

    def changed(*_args: object) -> int:
        raise FileChangedError(message)

    monkeypatch.setattr(ingest_command, "run", changed)
    assert main(["ingest", str(tmp_path / "a.jsonl")]) == 1
    assert capsys.readouterr().err == f"event-platform ingest: {message}\n"
