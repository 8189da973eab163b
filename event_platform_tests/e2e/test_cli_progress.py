"""`event-platform ingest` says where it is: a live line on a terminal, log lines in a pipe,
nothing extra with --json; its summary gives the wall time and the time per stage."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
from pathlib import Path

from event_platform_tests.e2e.test_cli import ROOT, SCRIPT, cli, environment
from event_platform_tests.e2e.test_run_recovery import generate

STAGES = ("landing", "fingerprinting", "storing", "committing", "reconciling", "checking")


def test_in_a_pipe_each_stage_is_a_line_and_the_summary_has_the_times(tmp_path: Path) -> None:
    path, _ = generate(tmp_path, "p.jsonl", 20_000, seed=11)
    result = cli("ingest", str(path), env=environment(tmp_path))
    assert result.returncode == 0, result.stderr
    shown = [line for line in result.stderr.splitlines() if line.startswith("event-platform")]
    for stage in STAGES:
        assert any(f"p.jsonl: {stage}" in line for line in shown), (stage, shown)
    assert "snapshot: publishing" in result.stderr
    assert "\r" not in result.stderr
    timing = next(line for line in result.stdout.splitlines() if line.startswith("  time "))
    assert all(f"{stage} " in timing for stage in ("store", "reconcile", "checks"))
    assert result.stdout.splitlines()[-1].startswith("done: 1 file(s) in ")


def test_with_json_nothing_but_the_objects_is_printed(tmp_path: Path) -> None:
    path, truth = generate(tmp_path, "j.jsonl", 2_000, seed=12)
    result = cli("ingest", "--json", str(path), env=environment(tmp_path))
    assert result.returncode == 0 and result.stderr == ""
    summary = json.loads(result.stdout)
    assert summary["lines"] == truth["lines"]
    stages = summary["stage_seconds"]
    assert {"wait", "fingerprint", "store", "reconcile", "checks", "total"} <= set(stages)
    assert summary["seconds"] == stages["total"] >= stages["store"] + stages["reconcile"]


def test_on_a_terminal_one_line_is_redrawn_with_rate_and_eta(tmp_path: Path) -> None:
    path, _ = generate(tmp_path, "t.jsonl", 600_000, seed=13)
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [SCRIPT, "ingest", "--no-publish", str(path)],
        env=environment(tmp_path),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    drawn = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        drawn += chunk
    os.close(leader)
    assert process.wait(timeout=60) == 0
    text = drawn.decode()
    assert "\r\x1b[K" in text and "t.jsonl: storing" in text
    assert "MB/s" in text and "ETA" in text
    assert "event-platform ingest: t.jsonl:" not in text  # no log lines on a terminal
