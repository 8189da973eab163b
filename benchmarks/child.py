"""Each measured run is a fresh process of the benchmark's own script, so its peak RSS and its
imports are its own; it prints one JSON object as its last line."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_child(module: str, *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> dict:
    """Run `python -m module` with `args` (from the project root unless told otherwise); its
    JSON, or `{"error": [last line]}`."""
    completed = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        check=False,
    )
    if completed.returncode != 0:
        return {"error": completed.stderr.strip().splitlines()[-1:]}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def cpu_seconds() -> float:
    """CPU seconds this process has used, user and system, all threads included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def minor_faults() -> int:
    """Minor page faults this process has taken: each is a page the kernel had to map (and
    zero) on first touch, so fresh allocations that churn show up here with less noise than
    in seconds."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
