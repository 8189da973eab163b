"""Which process executes a run, and whether that process is still alive.

A run whose process was SIGKILLed (an OOM kill, a pod eviction) never reports its own end: it
stays STARTED and keeps the warehouse writer. To tell a dead run from a slow one, each run is
tied to a process on a host: the CLI stamps its runs with `OWNER_TAGS`; a run launched by the
local process launcher logs its worker's pid in Dagster's own engine event. A pid is only
meaningful on its host and only for the process that had it when the run began, so a process
created after the run started is a reused pid, not the run's owner.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import dagster as dg
import psutil
from dagster._core.events import DagsterEventType

HOST_TAG = "event_platform/host"
PID_TAG = "event_platform/pid"
PID_STARTED_TAG = "event_platform/pid_started"
# Clock granularity of a process' start time, and of the timestamps compared with it.
START_SLACK_SECONDS = 2.0


@dataclass(frozen=True)
class RunOwner:
    host: str
    pid: int
    # The latest moment the owning process can have started (epoch seconds).
    started_by: float

    def is_alive(self) -> bool | None:
        """True/False on this host; None when the owner lives elsewhere and cannot be judged."""
        if self.host != socket.gethostname():
            return None
        try:
            created = psutil.Process(self.pid).create_time()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return False
        except psutil.AccessDenied:
            return True
        # Created after the run's process started: the pid was reused by another process.
        return created <= self.started_by + START_SLACK_SECONDS


def owner_tags() -> dict[str, str]:
    """Tags that tie a run executed in this process to it."""
    started = psutil.Process(os.getpid()).create_time()
    return {
        HOST_TAG: socket.gethostname(),
        PID_TAG: str(os.getpid()),
        PID_STARTED_TAG: f"{started:.3f}",
    }


def _tagged_owner(run: dg.DagsterRun) -> RunOwner | None:
    tags = run.tags
    if PID_TAG not in tags or HOST_TAG not in tags:
        return None
    try:
        return RunOwner(tags[HOST_TAG], int(tags[PID_TAG]), float(tags[PID_STARTED_TAG]))
    except (KeyError, ValueError):
        return None


def _launched_worker(instance: dg.DagsterInstance, run: dg.DagsterRun) -> RunOwner | None:
    """The worker process a local launcher started, from its "Started process" engine event."""
    records = instance.get_records_for_run(
        run.run_id, of_type=DagsterEventType.ENGINE_EVENT, limit=50
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        data = event.engine_event_data if event else None
        pid = data.metadata.get("pid") if data else None
        if pid is not None and "Started process for run" in (event.message or ""):
            return RunOwner(socket.gethostname(), int(pid.value), record.event_log_entry.timestamp)
    return None


def run_owner(
    instance: dg.DagsterInstance, run: dg.DagsterRun, *, local_launcher: bool
) -> RunOwner | None:
    """The process that executes `run`, if it can be known.

    `local_launcher`: runs launched by this instance's launcher execute on this host (true of
    the local process launcher, never of the Docker or Kubernetes launchers).
    """
    owner = _tagged_owner(run)
    if owner is None and local_launcher:
        owner = _launched_worker(instance, run)
    return owner
