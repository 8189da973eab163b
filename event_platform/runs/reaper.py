"""Fail the runs whose process is gone, so that they stop holding the warehouse writer.

Dagster's run monitoring does this under the daemon (with a launcher that can health-check its
workers, see `runs.launcher`). Without a daemon nothing would: the CLI calls `reap_dead_runs`
before it waits for the writer, and again while it waits.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
from dagster._core.storage.dagster_run import RunsFilter

from event_platform.runs.owner import run_owner

# A run in these states may hold the writer; NOT_STARTED covers a CLI killed between creating
# its run and starting it.
_LIVE_STATUSES = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


@dataclass(frozen=True)
class ReapedRun:
    run_id: str
    partition: str | None
    pid: int
    host: str

    def describe(self) -> str:
        where = f" ({self.partition})" if self.partition else ""
        return (
            f"run {self.run_id[:8]}{where} had died with its process {self.pid} on "
            f"{self.host}; marked it failed and freed the warehouse writer"
        )


def uses_local_launcher(instance: dg.DagsterInstance) -> bool:
    """Whether this instance's launched runs execute on this host (see `runs.launcher`)."""
    from event_platform.runs.launcher import LocalProcessRunLauncher

    try:
        return isinstance(instance.run_launcher, LocalProcessRunLauncher)
    except Exception:  # a launcher whose library is absent here launches elsewhere anyway
        return False


def reap_dead_runs(instance: dg.DagsterInstance) -> list[ReapedRun]:
    """Mark failed every unfinished run whose owning process is known to be gone."""
    local = uses_local_launcher(instance)
    reaped = []
    for record in instance.get_run_records(filters=RunsFilter(statuses=_LIVE_STATUSES)):
        run = record.dagster_run
        owner = run_owner(instance, run, local_launcher=local)
        if owner is None or owner.is_alive() is not False:
            continue
        message = (
            f"The process that executed this run ({owner.pid} on {owner.host}) is gone: it was "
            "killed or crashed. Its warehouse writes were rolled back; run the partition again."
        )
        instance.report_run_failed(run, message)
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        reaped.append(
            ReapedRun(run.run_id, run.tags.get("dagster/partition"), owner.pid, owner.host)
        )
    return reaped
