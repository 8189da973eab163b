"""The local process launcher, with the worker health check that Dagster's run monitoring needs.

Dagster's `DefaultRunLauncher` starts each run in a subprocess of the code server but cannot
tell whether that process still lives, so run monitoring leaves a killed run STARTED forever,
holding the warehouse writer. This launcher answers the health check from the worker's pid
(see `runs.owner`), on the premise of the default launcher itself: code server, daemon and
runs share one host. The Docker and Kubernetes launchers have health checks of their own.
"""

from __future__ import annotations

from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.launcher.default_run_launcher import DefaultRunLauncher

from event_platform.runs.owner import run_owner


class LocalProcessRunLauncher(DefaultRunLauncher):
    """`DefaultRunLauncher` whose run workers can be health-checked by run monitoring."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run) -> CheckRunHealthResult:
        owner = run_owner(self._instance, run, local_launcher=True)
        # Not yet logged, or owned by another host: only a process seen to be gone is failed.
        if owner is None or owner.is_alive() is not False:
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(
            WorkerStatus.FAILED, f"process {owner.pid} on {owner.host} is gone"
        )
