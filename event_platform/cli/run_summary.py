"""What a run of a file's lineage did, read back from the instance's event log.

The CLI reports its own runs and the runs it follows (a version already ingested, or being
ingested, by the sensor) the same way: from the run's events, not from in-process results.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import dagster as dg
from dagster._core.events import DagsterEventType

from event_platform.store.connection import names_an_interrupt

# The steps of a file's lineage, by the stage a user knows them as.
STAGE_OF_STEP = {
    "raw_event_file": "fingerprint",
    "validated_and_rejected_events": "store",
    "reconciliation_report": "reconcile",
    "partition_data_checks": "checks",
    "reconciliation_report_reconciliation_exact": "checks",
}
_WANTED = {
    DagsterEventType.ASSET_MATERIALIZATION,
    DagsterEventType.ASSET_CHECK_EVALUATION,
    DagsterEventType.STEP_START,
    DagsterEventType.STEP_SUCCESS,
    DagsterEventType.STEP_FAILURE,
    DagsterEventType.RUN_FAILURE,
}


# How an interrupt (SIGINT/SIGTERM) shows in a failed step: Dagster's own error, or DuckDB's,
# whose statement was interrupted by the signal or which names the interrupt raised in Python
# code it was calling.
_INTERRUPTS = {"DagsterExecutionInterruptedError", "KeyboardInterrupt", "InterruptException"}


def _interrupted(event: dg.DagsterEvent) -> bool:
    error = event.step_failure_data.error
    while error is not None:
        message = error.message.strip()
        if (
            error.cls_name in _INTERRUPTS
            or message.endswith("Query interrupted")
            or names_an_interrupt(message)
        ):
            return True
        error = error.cause
    return False


def _root_cause(event: dg.DagsterEvent) -> str | None:
    """One line that says why a step failed: our own `Failure` text, else the deepest cause."""
    data = event.step_failure_data
    if data.user_failure_data is not None and data.user_failure_data.description:
        return data.user_failure_data.description.strip().splitlines()[0]
    error = data.error
    while error is not None and error.cause is not None:
        error = error.cause
    if error is None:
        return None
    text = error.message.strip().splitlines()[0] if error.message.strip() else ""
    # Dagster prefixes an error's message with its class path: keep what the user reads.
    if ": " in text and text.split(": ", 1)[0].replace(".", "").replace("_", "").isalnum():
        text = text.split(": ", 1)[1]
    return f"{error.cls_name}: {text}" if error.cls_name not in text else text


def run_outcome(instance: dg.DagsterInstance, run_id: str) -> dict[str, Any]:
    """The figures, check verdicts, failure cause and step timings of one run."""
    records = instance.get_records_for_run(run_id, of_type=_WANTED).records
    metadata: dict[str, dict[str, Any]] = {}
    checks: list[dict[str, Any]] = []
    started: dict[str, float] = {}
    stage_seconds: dict[str, float] = defaultdict(float)
    error: str | None = None
    interrupted = False
    for record in records:
        entry = record.event_log_entry
        event = entry.dagster_event
        if event is None:
            continue
        kind = event.event_type
        if kind == DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.step_materialization_data.materialization
            metadata[materialization.asset_key.to_user_string()] = {
                key: value.value for key, value in materialization.metadata.items()
            }
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            checks.append(
                {
                    "check": evaluation.check_name,
                    "asset": evaluation.asset_key.to_user_string(),
                    "passed": evaluation.passed,
                    "severity": evaluation.severity.value,
                    "blocking": evaluation.blocking,
                    "description": evaluation.description,
                }
            )
        elif kind == DagsterEventType.STEP_START and event.step_key:
            started[event.step_key] = entry.timestamp
        elif kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            if event.step_key in started:
                stage = STAGE_OF_STEP.get(event.step_key, event.step_key)
                stage_seconds[stage] += entry.timestamp - started[event.step_key]
            if kind == DagsterEventType.STEP_FAILURE:
                interrupted = interrupted or _interrupted(event)
                error = error or _root_cause(event)
        elif kind == DagsterEventType.RUN_FAILURE and error is None:
            error = (event.message or "").strip().splitlines()[0] if event.message else None
    run = instance.get_run_by_id(run_id)
    return {
        "metadata": metadata,
        "checks": checks,
        "error": error,
        "stage_seconds": {stage: round(seconds, 3) for stage, seconds in stage_seconds.items()},
        "run_succeeded": run is not None and run.status == dg.DagsterRunStatus.SUCCESS,
        "interrupted": interrupted,
        "run_status": run.status.value if run is not None else None,
    }
