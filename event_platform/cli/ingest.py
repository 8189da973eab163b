"""`event-platform ingest PATH [PATH ...]`: the sensor's work, for scripts and cron.

Each file is ingested by one run of its partition's lineage, with every check, in this process
and through the same assets the daemon runs; the run lands the file first (hard-linked, so no
copy of a big file) under the name the user gave it. With DAGSTER_HOME set the runs join the
UI's history, and a file version that already has a run (the sensor's, or an earlier
`ingest`) is not ingested twice: that run is followed and reported. Afterwards the API's
snapshot is published. Exit status: 0 when every blocking check passed, 1 when one failed or a
run failed, 2 for usage errors, 130 when interrupted (SIGINT or SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from event_platform.cli.progress_line import ProgressLine

if TYPE_CHECKING:
    from event_platform.settings import Settings

FOLLOW_POLL_SECONDS = 0.5
FOLLOW_REMIND_SECONDS = 30.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ingest", help="validate, store and reconcile event files now (no daemon needed)"
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="event files (JSON lines)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per file")
    parser.add_argument("--verbose", action="store_true", help="show Dagster's run logs")
    parser.add_argument(
        "--force",
        action="store_true",
        help="ingest a file version again even when a run already ingested it",
    )
    parser.add_argument(
        "--no-publish",
        action="store_true",
        help="do not publish the API's snapshot afterwards (event-platform publish-snapshot)",
    )
    parser.add_argument(
        "--reconcile",
        choices=("ledger", "full"),
        default=None,
        help=(
            "how to reconcile: ledger (line digests and an independent sample) or full "
            "(re-derive every line); default EVENT_PLATFORM_RECONCILE_MODE, else ledger"
        ),
    )
    parser.set_defaults(func=run)


def _check_paths(raw_paths: list[str]) -> list[tuple[Path, Path]]:
    """(the path as given, the regular file it points to) for each path, or a usage error."""
    from event_platform.cli.main import UsageError
    from event_platform.ingest.landing import LandingError, landable

    checked = []
    for raw in raw_paths:
        path = Path(raw).expanduser()
        try:
            checked.append((path, landable(path)))
        except LandingError as exc:
            raise UsageError(str(exc)) from None
    names = [path.name for path, _ in checked]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UsageError(f"two files share the partition name {repeated[0]!r}; rename one")
    return checked


def _stop_on_sigterm() -> None:
    """SIGTERM stops the command like Ctrl-C: the run in progress rolls back and is failed."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def run(args: argparse.Namespace, settings: Settings) -> int:
    paths = _check_paths(args.paths)
    _stop_on_sigterm()
    warnings.filterwarnings("ignore", module="dagster")

    from event_platform import progress

    instance = _instance()
    shown = ProgressLine(quiet=args.json)
    status = 0
    stored_any = False
    files_started = time.monotonic()
    with progress.listening(shown):
        for user_path, target in paths:
            summary = _ingest_one(instance, settings, user_path, target, args, shown)
            shown.clear()
            status = max(status, 0 if summary["ok"] else 1)
            stored_any = stored_any or (summary["run_succeeded"] and not summary["followed_run"])
            print(json.dumps(summary, default=str) if args.json else describe(summary), flush=True)
        publishing_started = time.monotonic()
        if stored_any and not args.no_publish:
            status = max(status, _publish(instance, settings, shown, quiet=args.json))
    if not args.json:
        print(_whole_command(len(paths), files_started, publishing_started), flush=True)
    return status


def _whole_command(files: int, files_started: float, publishing_started: float) -> str:
    """The command's own wall time, from process start, and what lies outside the files."""
    import psutil

    now = time.monotonic()
    total = time.time() - psutil.Process().create_time()
    startup = total - (now - files_started)
    return (
        f"done: {files} file(s) in {total:.1f}s (startup {startup:.1f}s, "
        f"publication {now - publishing_started:.1f}s)"
    )


def _ingest_one(instance, settings, user_path: Path, target: Path, args, shown) -> dict[str, Any]:
    import dagster as dg

    from event_platform.defs.ingestion.assets import LINEAGE
    from event_platform.defs.ingestion.checks import PARTITION_CHECKS
    from event_platform.defs.ingestion.partitions import event_files
    from event_platform.defs.resources import build_resources
    from event_platform.ingest.landing import file_fingerprint
    from event_platform.runs.owner import owner_tags
    from event_platform.runs.versions import FINGERPRINT_TAG, TRIGGER_TAG, WRITER_WAIT_TAG
    from event_platform.runs.writer_turn import cli_turn

    started = time.monotonic()
    name = user_path.name
    fingerprint = file_fingerprint(target)
    earlier = None if args.force else _run_of_version(instance, name, fingerprint)
    if earlier is not None:
        return _follow(instance, earlier, user_path, settings, shown, started)
    # Without --verbose a failure is told once, in the summary line with its cause; Dagster's
    # error events would add a stack trace per failed and skipped step.
    log_level = "INFO" if args.verbose else "CRITICAL"
    with cli_turn(settings, instance, tell=shown.say) as waited:
        earlier = None if args.force else _run_of_version(instance, name, fingerprint)
        if earlier is not None:
            return _follow(instance, earlier, user_path, settings, shown, started)
        if not instance.has_dynamic_partition(event_files.name, name):
            instance.add_dynamic_partitions(event_files.name, [name])
        tags = {**owner_tags(), TRIGGER_TAG: "cli", FINGERPRINT_TAG: fingerprint}
        if waited >= 1:
            tags[WRITER_WAIT_TAG] = f"{waited:.1f}"
        result = dg.materialize(
            [*LINEAGE, *PARTITION_CHECKS],
            instance=instance,
            partition_key=name,
            resources=build_resources(settings),
            raise_on_error=False,
            run_config={
                "loggers": {"console": {"config": {"log_level": log_level}}},
                "ops": {
                    "raw_event_file": {"config": {"land_from": str(target)}},
                    **_reconcile_config(args),
                },
            },
            tags=tags,
        )
    summary = summarise(instance, result.run_id, name, user_path, settings)
    if summary.pop("interrupted"):
        # The signal reached a step and failed it; the command stops like it would elsewhere.
        raise KeyboardInterrupt
    summary["stage_seconds"] = _with_wait_and_total(summary["stage_seconds"], waited, started)
    summary["seconds"] = summary["stage_seconds"]["total"]
    return summary


def _reconcile_config(args: argparse.Namespace) -> dict[str, Any]:
    """The reconciliation asset's config for `--reconcile`; without it, the setting decides."""
    mode = getattr(args, "reconcile", None)
    return {"reconciliation_report": {"config": {"mode": mode}}} if mode else {}


def _run_of_version(instance, name: str, fingerprint: str):
    """The run that ingests this file version already, if it is not one that ended badly."""
    from event_platform.runs.versions import ENDED_BADLY, latest_run_of_version

    if not instance.is_persistent:
        return None
    earlier = latest_run_of_version(instance, name, fingerprint)
    return None if earlier is None or earlier.status in ENDED_BADLY else earlier


def _follow(instance, run, user_path: Path, settings, shown, started: float) -> dict[str, Any]:
    """Report a run of this file version that someone else started, once it has finished."""
    from event_platform.runs.reaper import reap_dead_runs
    from event_platform.runs.writer_turn import describe_run

    name = user_path.name
    if not run.is_finished:
        shown.say(f"{name}: this version is being ingested by {describe_run(run)}; following it")
        told_at = time.monotonic()
        while not run.is_finished:
            time.sleep(FOLLOW_POLL_SECONDS)
            for reaped in reap_dead_runs(instance):
                shown.say(reaped.describe())
            run = instance.get_run_by_id(run.run_id)
            if time.monotonic() - told_at >= FOLLOW_REMIND_SECONDS:
                shown.say(f"{name}: still following {describe_run(run)}")
                told_at = time.monotonic()
    else:
        shown.say(
            f"{name}: this version was ingested already by {describe_run(run)}; "
            "reporting that run (--force ingests it again)"
        )
    summary = summarise(instance, run.run_id, name, user_path, settings)
    summary.pop("interrupted")
    summary["followed_run"] = True
    # The followed run's own timings: this command only waited for it.
    record = instance.get_run_record_by_id(run.run_id)
    took = (record.end_time or time.time()) - (
        record.start_time or record.create_timestamp.timestamp()
    )
    summary["stage_seconds"]["total"] = round(took, 3)
    summary["seconds"] = summary["stage_seconds"]["total"]
    return summary


def _with_wait_and_total(stages: dict[str, float], waited: float, started: float):
    total = time.monotonic() - started
    timed = {"wait": round(waited, 3), **stages}
    timed["other"] = round(max(total - sum(timed.values()), 0.0), 3)
    timed["total"] = round(total, 3)
    return timed


def _publish(instance, settings, shown, *, quiet: bool) -> int:
    """Publish the API's snapshot from what is reconciled now; 1 when that fails."""
    import dagster as dg

    from event_platform import progress
    from event_platform.defs.resources import build_resources
    from event_platform.defs.serving.assets import published_events
    from event_platform.runs.owner import owner_tags
    from event_platform.runs.versions import TRIGGER_TAG
    from event_platform.runs.writer_turn import cli_turn

    progress.report(progress.Progress("snapshot", progress.PUBLISHING))
    with cli_turn(settings, instance, tell=shown.say, publishing=True):
        result = dg.materialize(
            [published_events],
            instance=instance,
            resources=build_resources(settings),
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
            tags={**owner_tags(), TRIGGER_TAG: "cli"},
        )
    shown.clear()
    outcome = summarise_publication(instance, result.run_id)
    if outcome["error"]:
        shown.say(f"publishing the API's snapshot FAILED: {outcome['error']}")
        return 1
    if not quiet:
        print(
            f"published {outcome['snapshot']} for the API: {outcome['events']:,} events of "
            f"{outcome['files']:,} reconciled file(s)",
            flush=True,
        )
    return 0


def summarise_publication(instance, run_id: str) -> dict[str, Any]:
    from event_platform.cli.run_summary import run_outcome

    outcome = run_outcome(instance, run_id)
    published = outcome["metadata"].get("published_events", {})
    snapshot = published.get("snapshot")
    return {
        "error": outcome["error"] or (None if outcome["run_succeeded"] else "the run failed"),
        "snapshot": Path(snapshot).name if snapshot else None,
        "events": published.get("dagster/row_count", 0),
        "files": published.get("files_published", 0),
    }


def _instance():
    """The DAGSTER_HOME instance (so runs show in the UI), else a throwaway one.

    Opening a new DAGSTER_HOME creates its SQLite schema; two cron jobs doing that at the same
    moment race ("table runs already exists"), so the opening is serialised by a file lock.
    """
    import dagster as dg
    from filelock import FileLock

    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return dg.DagsterInstance.ephemeral()
    Path(home).mkdir(parents=True, exist_ok=True)
    with FileLock(str(Path(home) / ".event-platform-instance.lock"), timeout=120):
        instance = dg.DagsterInstance.get()
        # Storages are built lazily; build them (and their schemas) while holding the lock.
        instance.get_runs(limit=1)
        instance.schedule_storage.all_instigator_state()
        return instance


def summarise(instance, run_id: str, name: str, path: Path, settings) -> dict[str, Any]:
    """The run's figures and check verdicts, read from its own events."""
    from event_platform.cli.run_summary import run_outcome

    outcome = run_outcome(instance, run_id)
    metadata = outcome["metadata"]
    checks = outcome["checks"]
    validated = metadata.get("validated_events", {})
    rejected = metadata.get("rejected_events", {})
    report = metadata.get("reconciliation_report", {})
    blocking_failed = any(c["blocking"] and not c["passed"] for c in checks)
    error = outcome["error"]
    if error is None and not outcome["run_succeeded"]:
        error = f"the run ended {outcome['run_status']}"
    return {
        "file": str(path),
        "partition": name,
        "lines": validated.get("lines"),
        "valid": validated.get("stored"),
        "rejected": rejected.get("rejected"),
        "duplicates": validated.get("duplicates"),
        "stored": report.get("stored_rows"),
        "reconciliation_passed": report.get("passed"),
        "seconds": None,
        "stage_seconds": outcome["stage_seconds"],
        "checks": checks,
        "run_id": run_id,
        "run_succeeded": outcome["run_succeeded"],
        "followed_run": False,
        "interrupted": outcome["interrupted"],
        "error": error,
        "database": str(settings.duckdb_path),
        "warehouse": settings.warehouse_description,
        "ok": outcome["run_succeeded"] and not blocking_failed,
    }


def _timings(stages: dict[str, float]) -> str:
    parts = [
        f"{stage} {seconds:.1f}s"
        for stage, seconds in stages.items()
        if stage != "total" and seconds >= 0.05
    ]
    return f"{stages.get('total', 0.0):.1f}s" + (f" ({', '.join(parts)})" if parts else "")


def describe(summary: dict[str, Any]) -> str:
    run = f"run {summary['run_id'][:8]}"
    if not summary["run_succeeded"] and summary["lines"] is None:
        reason = f": {summary['error']}" if summary.get("error") else ""
        return (
            f"{summary['file']}: FAILED ({run}; --verbose shows Dagster's log){reason}\n"
            f"  time {_timings(summary['stage_seconds'])}"
        )
    failed = [c for c in summary["checks"] if not c["passed"]]
    verdict = "ok" if summary["ok"] else "FAILED"
    followed = " (reported from an earlier run)" if summary.get("followed_run") else ""
    lines = [
        f"{summary['file']} -> partition {summary['partition']}: {verdict}{followed}",
        f"  lines {summary['lines']:,}  valid {summary['valid']:,}"
        f"  rejected {summary['rejected']:,}  duplicates {summary['duplicates']:,}",
        f"  reconciliation {'passed' if summary['reconciliation_passed'] else 'FAILED'};"
        f" checks {len(summary['checks']) - len(failed)}/{len(summary['checks'])} passed",
    ]
    for check in failed:
        why = f": {check['description']}" if check.get("description") else ""
        lines.append(
            f"  check {check['check']} ({check['severity']}) failed on {check['asset']}{why}"
        )
    if summary.get("error"):
        lines.append(f"  error: {summary['error']}")
    lines.append(f"  time {_timings(summary['stage_seconds'])}; {run}")
    lines.append(f"  warehouse {summary['warehouse']}")
    return "\n".join(lines)
