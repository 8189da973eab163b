"""Asset checks, per partition where it makes sense; each says in SQL what "good" means.

Soft contract rules (processing_date equals the date of event_time; event_time not later than
ingestion) never reject a line: they are WARN checks here. Reconciliation is the one blocking
check; publication additionally reads `reconciliation_reports.passed` itself, because a failed
blocking check does not undo what its asset already wrote.

The partition's data checks run in one step (`partition_data_checks`): a step per check would
pay Dagster's per-step bookkeeping and a DuckDB connection each, which dominates a small file's
run. The UI still lists, runs and plots every check on its own: the step runs the subset selected.
"""

import time
import warnings
from collections.abc import Callable, Iterator

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from event_platform import progress
from event_platform.contract.reasons import disclosed_reason, disclosed_reasons
from event_platform.defs.ingestion.partitions import event_files
from event_platform.defs.resources import PlatformResource, warehouse_store
from event_platform.ingest.landing import landed_files
from event_platform.run_metadata import RECONCILE_ASSET
from event_platform.runs.writer_turn import WRITER_POOL
from event_platform.store.backend import Warehouse
from event_platform.store.counts import partition_counts
from event_platform.store.schema import DUPLICATE_REASON, EVENTS_COLUMNS
from event_platform.store.tables import RECONCILIATION_REPORTS
from event_platform.store.uniqueness import repeated_hashes

SAMPLE = 10
WARN = dg.AssetCheckSeverity.WARN
ERROR = dg.AssetCheckSeverity.ERROR

# A data check reads one partition through the step's connection; the store answers what the
# partition's copy cannot (the stored table's own schema).
DataCheck = Callable[
    [duckdb.DuckDBPyConnection, str, PlatformResource, Warehouse], dg.AssetCheckResult
]
DATA_CHECKS: dict[dg.AssetCheckKey, tuple[dg.AssetCheckSpec, DataCheck]] = {}


def data_check(asset: str, description: str) -> Callable[[DataCheck], DataCheck]:
    """Register a per-partition check of `asset`, named after the function."""

    def register(check: DataCheck) -> DataCheck:
        # Checks per partition are a Dagster preview feature, chosen knowingly: the warning
        # would otherwise reach every command's output (the CLI silences Dagster's own).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dg.PreviewWarning)
            spec = dg.AssetCheckSpec(
                check.__name__, asset=asset, partitions_def=event_files, description=description
            )
        DATA_CHECKS[spec.key] = (spec, check)
        return check

    return register


# The report's figures shown on the check, and those that must be zero; read by column name.
_REPORT_WRONG = ("missing_rows", "unexpected_rows", "mismatched_rows")
_REPORT_FIGURES = ("lines_total", "valid", "rejected", "duplicates", *_REPORT_WRONG)
# Which reconciliation vouches for the partition: by line ledger and sample, or in full.
_REPORT_MODE = ("mode", "sample_seed", "sample_lines")
_REPORT_READ = tuple(
    RECONCILIATION_REPORTS.column(name).name
    for name in (*_REPORT_FIGURES, "passed", "checked_at", *_REPORT_MODE)
)


@dg.asset_check(
    asset=RECONCILE_ASSET,
    blocking=True,
    partitions_def=event_files,
    pool=WRITER_POOL,
    description="The store holds exactly the file's lines: none missing, unexpected or altered.",
)
def reconciliation_exact(
    context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource
) -> dg.AssetCheckResult:
    progress.report(progress.Progress(context.partition_key, progress.CHECKING))
    with (
        warehouse_store(duckdb) as store,
        store.partition(context.partition_key) as con,
    ):
        row = con.execute(
            f"""
            SELECT {", ".join(_REPORT_READ)} FROM main.reconciliation_reports WHERE source_file = $f
            ORDER BY checked_at DESC LIMIT 1
            """,
            {"f": context.partition_key},
        ).fetchone()
    if row is None:
        return dg.AssetCheckResult(passed=False, description="no reconciliation report yet")
    report = dict(zip(_REPORT_READ, row, strict=True))
    metadata: dict[str, object] = {name: report[name] for name in _REPORT_FIGURES}
    metadata["checked_at"] = str(report["checked_at"])
    metadata["mode"] = report["mode"]
    if report["sample_seed"] is not None:
        # Text: a 62-bit seed is beyond the UI's integers.
        metadata["sample_seed"] = dg.MetadataValue.text(str(report["sample_seed"]))
        metadata["sample_lines"] = report["sample_lines"]
    wrong = {name: report[name] for name in _REPORT_WRONG if report[name]}
    description = (
        None
        if report["passed"]
        else "the store does not match the file: "
        + (
            ", ".join(f"{count:,} {name.removesuffix('_rows')}" for name, count in wrong.items())
            or "the counts do not add up to the file's lines"
        )
    )
    return dg.AssetCheckResult(
        passed=bool(report["passed"]), metadata=metadata, description=description
    )


@data_check(
    "rejected_events",
    "Share of rejected lines: WARN above the warn rate (1%), ERROR above 5%.",
)
def rejection_rate(
    con: duckdb.DuckDBPyConnection, partition: str, platform: PlatformResource, store: Warehouse
) -> dg.AssetCheckResult:
    stored, rejected, duplicates = partition_counts(con, partition)
    reasons = con.execute(
        """
        SELECT reason, count(*) AS lines FROM (
            SELECT unnest(reasons) AS reason FROM main.rejected_events WHERE source_file = $f)
        GROUP BY reason ORDER BY lines DESC LIMIT 20
        """,
        {"f": partition},
    ).fetchall()
    first_failing = con.execute(
        f"""
        SELECT line_number, reasons FROM main.rejected_events
        WHERE source_file = $f AND NOT reasons = [$duplicate]
        ORDER BY line_number LIMIT {SAMPLE}
        """,
        {"f": partition, "duplicate": DUPLICATE_REASON},
    ).fetchall()
    lines = stored + rejected + duplicates
    rate = rejected / lines if lines else 0.0
    severity = ERROR if rate > platform.rejection_error_rate else WARN
    passed = rate <= platform.rejection_warn_rate
    return dg.AssetCheckResult(
        passed=passed,
        severity=severity,
        description=None
        if passed
        else (
            f"{rate:.1%} of the file's {lines:,} lines were rejected (WARN above "
            f"{platform.rejection_warn_rate:.1%}, ERROR above {platform.rejection_error_rate:.1%})"
        ),
        metadata={
            "rejection_rate": round(rate, 6),
            "rejected": rejected,
            "lines": lines,
            "warn_above": platform.rejection_warn_rate,
            "error_above": platform.rejection_error_rate,
            "top_reasons": dg.MetadataValue.json(
                {disclosed_reason(reason): n for reason, n in reasons}
            ),
            "first_failing_lines": failing_lines_table(first_failing),
        },
    )


def failing_lines_table(rows: list[tuple[int, list[str]]]) -> dg.MetadataValue:
    """The first failing lines with their reasons, details from the input masked."""
    return dg.MetadataValue.table(
        records=[
            dg.TableRecord(
                {
                    "line_number": number,
                    "reasons": ", ".join(disclosed_reasons(reasons)),
                }
            )
            for number, reasons in rows
        ],
        schema=dg.TableSchema(
            columns=[dg.TableColumn("line_number", "int"), dg.TableColumn("reasons", "string")]
        ),
    )


@data_check(
    "validated_events", "No event_hash of this partition appears twice anywhere in main.events."
)
def unique_event_hash(
    con: duckdb.DuckDBPyConnection, partition: str, platform: PlatformResource, store: Warehouse
) -> dg.AssetCheckResult:
    found = repeated_hashes(con, partition, sample=SAMPLE)
    return dg.AssetCheckResult(
        passed=found.repeated == 0 and found.index_mismatches == 0,
        metadata={
            "duplicated_hashes": found.repeated,
            "sample": dg.MetadataValue.json(found.sample),
            "index_mismatches": found.index_mismatches,
            "other_files_searched": found.other_files,
        },
    )


@data_check(
    "validated_events",
    "The stored events table still has the columns and types the contract writes.",
)
def column_schema_unchanged(
    con: duckdb.DuckDBPyConnection, partition: str, platform: PlatformResource, store: Warehouse
) -> dg.AssetCheckResult:
    # The stored table's schema: on Iceberg, `con` holds a copy made from the contract's.
    live = store.columns(con, "events")
    differences = {
        name: {"expected": expected, "found": live.get(name)}
        for name, expected in EVENTS_COLUMNS.items()
        if live.get(name) != expected
    }
    differences.update(
        {
            name: {"expected": None, "found": t}
            for name, t in live.items()
            if name not in EVENTS_COLUMNS
        }
    )
    return dg.AssetCheckResult(
        passed=not differences, metadata={"differences": dg.MetadataValue.json(differences)}
    )


@data_check(
    "validated_events",
    "Every line is accounted for, and a non-empty file stored or rejected something.",
)
def row_count_sane(
    con: duckdb.DuckDBPyConnection, partition: str, platform: PlatformResource, store: Warehouse
) -> dg.AssetCheckResult:
    size = platform.landed_file(partition).stat().st_size
    stored, rejected, duplicates = partition_counts(con, partition)
    accounted = stored + rejected + duplicates
    return dg.AssetCheckResult(
        passed=accounted > 0 or size == 0,
        severity=WARN,
        metadata={
            "stored": stored,
            "rejected": rejected,
            "duplicates": duplicates,
            "file_bytes": size,
        },
    )


def _soft_rule(con, source_file: str, violation_sql: str) -> dg.AssetCheckResult:
    count, sample = con.execute(
        f"""
        SELECT count(*), list(line_number ORDER BY line_number)[1:$n]
        FROM main.events WHERE source_file = $f AND ({violation_sql})
        """,
        {"f": source_file, "n": SAMPLE},
    ).fetchone()
    return dg.AssetCheckResult(
        passed=count == 0,
        severity=WARN,
        metadata={"violations": count, "sample_lines": dg.MetadataValue.json(sample or [])},
    )


@data_check("validated_events", "Soft rule: processing_date is the date of event_time.")
def processing_date_matches_event_time(
    con: duckdb.DuckDBPyConnection, partition: str, platform: PlatformResource, store: Warehouse
) -> dg.AssetCheckResult:
    return _soft_rule(con, partition, "processing_date <> CAST(event_time AS DATE)")


@data_check(
    "validated_events", "Soft rule: event_time is not later than the time the event was ingested."
)
def event_time_not_in_future(
    con: duckdb.DuckDBPyConnection, partition: str, platform: PlatformResource, store: Warehouse
) -> dg.AssetCheckResult:
    return _soft_rule(con, partition, "event_time > ingested_at")


@dg.multi_asset_check(
    specs=[spec for spec, _ in DATA_CHECKS.values()],
    can_subset=True,
    pool=WRITER_POOL,
    description="The partition's data checks, through one warehouse connection.",
)
def partition_data_checks(
    context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource, platform: PlatformResource
) -> Iterator[dg.AssetCheckResult]:
    progress.report(progress.Progress(context.partition_key, progress.CHECKING))
    with (
        warehouse_store(duckdb) as store,
        store.partition(context.partition_key) as con,
    ):
        selected = context.selected_asset_check_keys
        for key, (_, check) in DATA_CHECKS.items():
            if key in selected:
                result = check(con, context.partition_key, platform, store)
                yield result._replace(asset_key=key.asset_key, check_name=key.name)


@dg.asset_check(
    asset="raw_event_file",
    description="The newest file in the landing folder is younger than the freshness window.",
)
def landing_freshness(platform: PlatformResource) -> dg.AssetCheckResult:
    files = landed_files(platform.landing_dir)
    if not files:
        return dg.AssetCheckResult(passed=False, severity=WARN, description="no landed files")
    newest = max(landed.landed_ns for landed in files) / 1e9
    age_hours = (time.time() - newest) / 3600
    return dg.AssetCheckResult(
        passed=age_hours <= platform.freshness_hours,
        severity=WARN,
        metadata={
            "newest_age_hours": round(age_hours, 3),
            "window_hours": platform.freshness_hours,
        },
    )


PARTITION_CHECKS = [reconciliation_exact, partition_data_checks]
CHECKS = [*PARTITION_CHECKS, landing_freshness]
