"""`event-platform ingest PATH [PATH ...]`: the sensor's work, for scripts and cron.

Each file is placed in the landing folder (hard-linked, so no copy of big files; replaced when a
different file has the same name) and its partition is materialised in-process with every check,
through the same assets the daemon runs. With DAGSTER_HOME set the runs join the UI's history.
Exit status: 0 when every blocking check passed, 1 when one failed, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import warnings
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ingest", help="validate, store and reconcile event files now (no daemon needed)"
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="event files (JSON lines)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per file")
    parser.add_argument("--verbose", action="store_true", help="show Dagster's run logs")
    parser.set_defaults(func=run)


def land(path: Path, landing_dir: Path) -> str:
    """Put `path` into the landing folder under its name, atomically; returns the name."""
    landing_dir.mkdir(parents=True, exist_ok=True)
    target = landing_dir / path.name
    if target.exists() and os.path.samefile(path, target):
        return path.name
    temporary = landing_dir / f".{path.name}.{os.getpid()}.tmp"
    try:
        os.link(path, temporary)
    except OSError:
        shutil.copyfile(path, temporary)
    os.replace(temporary, target)
    return path.name


def _check_paths(raw_paths: list[str]) -> list[Path]:
    from event_platform.cli import UsageError

    paths = [Path(raw).expanduser() for raw in raw_paths]
    for path in paths:
        if not path.exists():
            raise UsageError(f"no such file: {path}")
        if not path.is_file():
            raise UsageError(f"not a regular file: {path}")
    names = [path.name for path in paths]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UsageError(f"two files share the partition name {repeated[0]!r}; rename one")
    return paths


def run(args: argparse.Namespace) -> int:
    paths = _check_paths(args.paths)
    warnings.filterwarnings("ignore", module="dagster")

    import dagster as dg

    from event_platform.config import Settings
    from event_platform.defs.assets import LINEAGE
    from event_platform.defs.checks import PARTITION_CHECKS
    from event_platform.defs.partitions import event_files
    from event_platform.defs.resources import build_resources

    settings = Settings.from_env()
    instance = _instance()
    # Without --verbose a failure is told once, in the summary line with its reason; Dagster's
    # error events would add a stack trace per failed and skipped step.
    log_level = "INFO" if args.verbose else "CRITICAL"
    status = 0
    for path in paths:
        name = land(path, settings.landing_dir)
        if not instance.has_dynamic_partition(event_files.name, name):
            instance.add_dynamic_partitions(event_files.name, [name])
        result = dg.materialize(
            [*LINEAGE, *PARTITION_CHECKS],
            instance=instance,
            partition_key=name,
            resources=build_resources(settings),
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
            tags={"event_platform/trigger": "cli"},
        )
        summary = summarise(result, name, path, settings)
        if not summary["ok"]:
            status = 1
        print(json.dumps(summary, default=str) if args.json else describe(summary), flush=True)
    return status


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


def summarise(result, name: str, path: Path, settings) -> dict[str, object]:
    """The run's figures and check verdicts, read from its own events."""
    metadata: dict[str, dict[str, object]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        metadata[materialization.asset_key.to_user_string()] = {
            key: value.value for key, value in materialization.metadata.items()
        }
    checks = [
        {
            "check": evaluation.check_name,
            "asset": evaluation.asset_key.to_user_string(),
            "passed": evaluation.passed,
            "severity": evaluation.severity.value,
            "blocking": evaluation.blocking,
        }
        for evaluation in result.get_asset_check_evaluations()
    ]
    # The first failed step's own message, e.g. which limit to raise; the rest is in the logs.
    errors = [event.step_failure_data.error for event in result.get_step_failure_events()]
    validated = metadata.get("validated_events", {})
    rejected = metadata.get("rejected_events", {})
    report = metadata.get("reconciliation_report", {})
    blocking_failed = any(c["blocking"] and not c["passed"] for c in checks)
    return {
        "file": str(path),
        "partition": name,
        "lines": validated.get("lines"),
        "valid": validated.get("stored"),
        "rejected": rejected.get("rejected"),
        "duplicates": validated.get("duplicates"),
        "stored": report.get("stored_rows"),
        "reconciliation_passed": report.get("passed"),
        "seconds": validated.get("seconds"),
        "checks": checks,
        "run_id": result.run_id,
        "run_succeeded": result.success,
        "error": _first_line(errors[0].message) if errors and errors[0] else None,
        "database": str(settings.duckdb_path),
        "ok": result.success and not blocking_failed,
    }


def _first_line(message: str) -> str:
    """Dagster prefixes a step's error with the exception's type: keep what the user reads."""
    line = message.strip().splitlines()[0] if message.strip() else ""
    return line.split(": ", 1)[1] if line.startswith("dagster.") and ": " in line else line


def describe(summary: dict[str, object]) -> str:
    if not summary["run_succeeded"] and summary["lines"] is None:
        reason = f": {summary['error']}" if summary.get("error") else ""
        run = f"run {summary['run_id']}; run with --verbose for Dagster's log"
        return f"{summary['file']}: FAILED ({run}){reason}"
    failed = [c for c in summary["checks"] if not c["passed"]]
    verdict = "ok" if summary["ok"] else "FAILED"
    lines = [
        f"{summary['file']} -> partition {summary['partition']}: {verdict}",
        f"  lines {summary['lines']:,}  valid {summary['valid']:,}"
        f"  rejected {summary['rejected']:,}"
        f"  duplicates {summary['duplicates']:,}  ({summary['seconds']}s)",
        f"  reconciliation {'passed' if summary['reconciliation_passed'] else 'FAILED'};"
        f" checks {len(summary['checks']) - len(failed)}/{len(summary['checks'])} passed",
    ]
    lines += [f"  check {c['check']} ({c['severity']}) failed on {c['asset']}" for c in failed]
    lines.append(f"  database {summary['database']}")
    return "\n".join(lines)
