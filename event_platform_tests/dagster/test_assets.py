"""The lineage materialised through Dagster's own test helper, checks included.

Tests taking `backend_settings` run once on each warehouse backend (DuckDB file, Iceberg).
"""

from __future__ import annotations

import dataclasses

import dagster as dg
import duckdb
import pytest

import event_platform.store.writer as writer_module
from event_platform.cli.run_summary import run_outcome
from event_platform.defs.ingestion.assets import LINEAGE, reconciliation_report
from event_platform.defs.ingestion.checks import PARTITION_CHECKS, reconciliation_exact
from event_platform.defs.ingestion.partitions import event_files
from event_platform.defs.resources import build_resources
from event_platform.defs.serving.assets import published_events
from event_platform.store.publication import current_snapshot
from event_platform_tests.conftest import event_line, write_lines
from event_platform_tests.iceberg_catalog import settings_backend


def run(settings, instance, key: str, assets=None, raise_on_error: bool = True):
    if not instance.has_dynamic_partition(event_files.name, key):
        instance.add_dynamic_partitions(event_files.name, [key])
    return dg.materialize(
        assets or [*LINEAGE, *PARTITION_CHECKS],
        instance=instance,
        partition_key=key,
        resources=build_resources(settings),
        raise_on_error=raise_on_error,
    )


EVERY_PARTITION_CHECK = {
    "reconciliation_exact",
    "rejection_rate",
    "unique_event_hash",
    "column_schema_unchanged",
    "row_count_sane",
    "processing_date_matches_event_time",
    "event_time_not_in_future",
}


def checks_of(result) -> dict[str, tuple[bool, str]]:
    return {
        e.check_name: (e.passed, e.severity.value) for e in result.get_asset_check_evaluations()
    }


def metadata_of(result, asset: str) -> dict[str, object]:
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key.to_user_string() == asset:
            return {k: v.value for k, v in materialization.metadata.items()}
    raise AssertionError(f"{asset} was not materialised")


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


def test_a_clean_file_materialises_with_every_check_green(backend_settings, instance) -> None:
    settings = backend_settings
    write_lines(settings.landing_dir / "day1.jsonl", [event_line(i) for i in range(200)])
    result = run(settings, instance, "day1.jsonl")
    assert result.success
    checks = checks_of(result)
    assert set(checks) == EVERY_PARTITION_CHECK
    assert all(passed for passed, _ in checks.values()), checks
    validated = metadata_of(result, "validated_events")
    assert (validated["lines"], validated["stored"], validated["duplicates"]) == (200, 200, 0)
    assert validated["dagster/row_count"] == 200
    schema = validated["dagster/column_schema"]
    assert [c.name for c in schema.columns][:3] == ["event_hash", "event_type", "event_time"]
    report = metadata_of(result, "reconciliation_report")
    assert report["passed"] is True and report["lines_total"] == 200
    with settings_backend(settings) as backend:
        assert backend.rows("day1.jsonl", "SELECT count(*) FROM events") == [(200,)]


def test_files_sharing_events_materialise_green_and_are_published_once(
    backend_settings, instance
) -> None:
    settings = backend_settings
    write_lines(settings.landing_dir / "a.jsonl", [event_line(i) for i in range(100)])
    write_lines(settings.landing_dir / "b.jsonl", [event_line(i) for i in range(50, 120)])
    for key in ("a.jsonl", "b.jsonl"):
        result = run(settings, instance, key)
        assert result.success
        checks = checks_of(result)
        assert set(checks) == EVERY_PARTITION_CHECK
        assert all(passed for passed, _ in checks.values()), checks
    assert dg.materialize(
        [published_events], instance=instance, resources=build_resources(settings)
    ).success
    # The Iceberg backend never creates the DuckDB warehouse file.
    assert settings.duckdb_path.exists() == (settings.warehouse_backend == "duckdb")
    snapshot = current_snapshot(settings.published_dir)
    with duckdb.connect(str(snapshot), read_only=True) as con:
        assert con.execute(
            "SELECT count(*), count(DISTINCT event_hash) FROM events"
        ).fetchall() == [(120, 120)]


def test_rejections_and_soft_rules_are_reported_with_their_severity(settings, instance) -> None:
    lines = [event_line(i) for i in range(90)]
    lines += ["not json"] * 3 + [""] * 3  # 6% rejected: above the 5% error line
    lines.append(event_line(500, processing_date="2019-01-05"))  # soft rule: WARN only
    lines.append(event_line(501, event_time="2999-01-01 00:00:00", processing_date="2999-01-01"))
    write_lines(settings.landing_dir / "bad.jsonl", lines)
    result = run(settings, instance, "bad.jsonl")
    assert result.success
    checks = checks_of(result)
    assert checks["rejection_rate"] == (False, "ERROR")
    assert checks["processing_date_matches_event_time"] == (False, "WARN")
    assert checks["event_time_not_in_future"] == (False, "WARN")
    assert checks["reconciliation_exact"][0] is True
    rejected = metadata_of(result, "rejected_events")
    assert rejected["rejected"] == 6
    reasons = {row.data["reason"]: row.data["lines"] for row in rejected["reasons"].records}
    assert reasons == {"malformed_json": 3, "empty_line": 3}


def test_the_blocking_check_fails_when_the_store_is_tampered_with(
    backend_settings, instance
) -> None:
    settings = backend_settings
    write_lines(settings.landing_dir / "t.jsonl", [event_line(i) for i in range(10)])
    assert run(settings, instance, "t.jsonl").success
    with settings_backend(settings) as backend:
        backend.corrupt("t.jsonl", "DELETE FROM events WHERE line_number = 3")
    result = run(
        settings, instance, "t.jsonl", [reconciliation_report, reconciliation_exact], False
    )
    assert checks_of(result)["reconciliation_exact"] == (False, "ERROR")
    assert not result.success
    report = metadata_of(result, "reconciliation_report")
    assert report["missing_rows"] == 1


def test_the_schema_check_compares_the_stored_table_with_the_contract(
    backend_settings, instance
) -> None:
    """A column added to and one dropped from the stored events table (on Iceberg through its
    own schema evolution, as another engine would) fail the check, on either backend."""
    settings = backend_settings
    write_lines(settings.landing_dir / "s.jsonl", [event_line(i) for i in range(5)])
    assert run(settings, instance, "s.jsonl").success
    with settings_backend(settings) as backend:
        if backend.name == "duckdb":
            backend.store.execute("ALTER TABLE events ADD COLUMN extra VARCHAR")
            backend.store.execute("ALTER TABLE events DROP COLUMN phone_number")
        else:
            from pyiceberg.types import StringType

            with backend.store.table("events").update_schema() as update:
                update.add_column("extra", StringType())
                update.delete_column("phone_number")
    schema_check = dg.AssetCheckKey(dg.AssetKey("validated_events"), "column_schema_unchanged")
    job = dg.Definitions(
        assets=LINEAGE, asset_checks=PARTITION_CHECKS, resources=build_resources(settings)
    ).resolve_implicit_global_asset_job_def()
    subset = job.get_subset(asset_selection=set(), asset_check_selection={schema_check})
    result = subset.execute_in_process(instance=instance, partition_key="s.jsonl")
    [evaluation] = result.get_asset_check_evaluations()
    assert (evaluation.passed, evaluation.severity.value) == (False, "ERROR")
    assert evaluation.metadata["differences"].value == {
        "phone_number": {"expected": "VARCHAR", "found": None},
        "extra": {"expected": None, "found": "VARCHAR"},
    }


def test_the_long_steps_say_what_they_are_doing(settings, instance) -> None:
    """Reconciling a 10M-line file, or moving a whole file of duplicates after its last chunk,
    takes tens of seconds: the run's log shows it."""
    lines = [event_line(i) for i in range(50)]
    write_lines(settings.landing_dir / "a.jsonl", lines)
    write_lines(settings.landing_dir / "b.jsonl", lines)
    run(settings, instance, "a.jsonl", assets=LINEAGE)
    result = run(settings, instance, "b.jsonl", assets=LINEAGE)
    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    moving = "b.jsonl: 50 stored lines repeat an earlier line of the file or an event of 1 other"
    assert any(message.startswith(moving) for message in messages), messages
    assert "b.jsonl: reconciled 50 lines: passed" in messages


def test_the_data_checks_share_one_step_and_each_still_runs_alone(settings, instance) -> None:
    """One step (one connection, one set of Dagster's step events) for six checks; a user who
    runs one check from the UI gets that check only."""
    write_lines(settings.landing_dir / "s.jsonl", [event_line(i) for i in range(20)])
    result = run(settings, instance, "s.jsonl")
    checked = dg.DagsterEventType.ASSET_CHECK_EVALUATION
    steps = {event.step_key for event in result.all_events if event.event_type == checked}
    assert steps == {"reconciliation_report_reconciliation_exact", "partition_data_checks"}
    one_check = dg.AssetCheckKey(dg.AssetKey("validated_events"), "row_count_sane")
    # What the UI's "Execute" on one check launches: the asset job, subset to that check.
    job = dg.Definitions(
        assets=LINEAGE, asset_checks=PARTITION_CHECKS, resources=build_resources(settings)
    ).resolve_implicit_global_asset_job_def()
    subset = job.get_subset(asset_selection=set(), asset_check_selection={one_check})
    alone = subset.execute_in_process(instance=instance, partition_key="s.jsonl")
    assert checks_of(alone) == {"row_count_sane": (True, "WARN")}
    assert not alone.get_asset_materialization_events()


def test_a_missing_file_fails_the_run_with_a_clear_message(settings, instance) -> None:
    result = run(settings, instance, "gone.jsonl", raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "gone.jsonl" in failure.message and "missing" in failure.message


class _InterruptedWhenRead:
    """Stands in for a chunk at the moment a signal lands while DuckDB reads its Arrow schema:
    Dagster's interrupt handler raises in whatever Python code runs, here DuckDB's callback."""

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        raise dg.DagsterExecutionInterruptedError()


def test_an_interrupt_inside_a_duckdb_callback_reads_as_interrupted_and_stores_nothing(
    settings, instance, monkeypatch
) -> None:
    """DuckDB replaces the interrupt with an error of its own that names it. The step still fails
    as interrupted, not as a warehouse failure, and the chunks it had written are rolled back."""
    settings = dataclasses.replace(settings, chunk_bytes=4096)
    write_lines(settings.landing_dir / "day1.jsonl", [event_line(i) for i in range(200)])
    views = []
    real_view = writer_module.arrow_view

    def view(frame):
        views.append(frame)
        # Two views a chunk (valid, rejected): the fifth is the third chunk's valid rows.
        return _InterruptedWhenRead() if len(views) == 5 else real_view(frame)

    monkeypatch.setattr(writer_module, "arrow_view", view)
    result = run(settings, instance, "day1.jsonl", raise_on_error=False)
    # The third chunk's rejected rows were viewed too, before its first statement ran.
    assert not result.success and len(views) == 6
    [failure] = result.get_step_failure_events()
    assert failure.step_key == "validated_and_rejected_events"
    error = failure.step_failure_data.error
    assert error.cls_name == "DagsterExecutionInterruptedError", error.message
    assert "DagsterExecutionInterruptedError" in error.cause.message
    assert run_outcome(instance, result.run_id)["interrupted"] is True
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM events").fetchall() == [(0,)]
        assert con.execute("SELECT count(*) FROM rejected_events").fetchall() == [(0,)]


def test_a_duckdb_error_naming_an_interrupt_reads_as_interrupted_outside_the_resource(
    instance,
) -> None:
    """The CLI's summary knows DuckDB's wrapped interrupt itself, for a connection that is not
    the warehouse resource's (the Iceberg backend's own DuckDB, say)."""

    @dg.asset
    def reads_a_chunk() -> None:
        valid_chunk = _InterruptedWhenRead()  # noqa: F841 - read by the SQL below
        duckdb.connect().execute("SELECT * FROM valid_chunk")

    result = dg.materialize([reads_a_chunk], instance=instance, raise_on_error=False)
    [failure] = result.get_step_failure_events()
    assert failure.step_failure_data.error.cause.cls_name == "InvalidInputException"
    assert run_outcome(instance, result.run_id)["interrupted"] is True


def test_rerunning_a_partition_is_idempotent(backend_settings, instance) -> None:
    settings = backend_settings
    write_lines(settings.landing_dir / "r.jsonl", [event_line(i) for i in range(5)] + ["x"])
    run(settings, instance, "r.jsonl")
    result = run(settings, instance, "r.jsonl")
    assert checks_of(result)["unique_event_hash"] == (True, "ERROR")
    with settings_backend(settings) as backend, backend.whole() as con:
        assert con.execute("SELECT count(*) FROM events").fetchall() == [(5,)]
        assert con.execute("SELECT count(*) FROM rejected_events").fetchall() == [(1,)]
        assert con.execute("SELECT count(*) FROM reconciliation_reports").fetchall() == [(2,)]


def test_landing_freshness_warns_on_stale_or_empty_landing(settings) -> None:
    import os

    from event_platform.defs.ingestion.checks import landing_freshness
    from event_platform.defs.resources import PlatformResource

    platform = PlatformResource.from_settings(settings)
    empty = landing_freshness(platform=platform)
    assert (empty.passed, empty.severity.value) == (False, "WARN")
    (settings.landing_dir / ".writing.tmp").write_text("{}\n")  # not landed yet
    assert landing_freshness(platform=platform).passed is False
    fresh = write_lines(settings.landing_dir / "new.jsonl", [event_line(1)])
    assert landing_freshness(platform=platform).passed is True
    os.utime(fresh, ns=(1, 1))  # mtime long ago; ctime (the rename) still counts as landing
    assert landing_freshness(platform=platform).passed is True


def test_a_failed_rejection_rate_shows_the_first_failing_lines_masked(settings, instance) -> None:
    """The UI showed counts per reason only; now the first failing lines with their reasons,
    where a sender's key (an email here) is masked, and the check says why it failed."""
    sender_key = '"jane.roe@private.org": 1, '
    lines = [
        event_line(0),
        "nope",
        "{" + sender_key + event_line(1)[1:],
        *[event_line(i) for i in range(2, 10)],
        "",
    ]
    write_lines(settings.landing_dir / "m.jsonl", lines)
    result = run(settings, instance, "m.jsonl")
    [evaluation] = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "rejection_rate"
    ]
    assert evaluation.description.startswith("25.0% of the file's 12 lines were rejected")
    table = evaluation.metadata["first_failing_lines"].value
    shown = [(record.data["line_number"], record.data["reasons"]) for record in table.records]
    assert shown == [
        (2, "malformed_json"),
        (3, "unexpected_field:***"),
        (12, "empty_line"),
    ]
    assert "jane.roe" not in str(evaluation.metadata)
    reasons = metadata_of(result, "rejected_events")["reasons"]
    assert "jane.roe" not in str([row.data for row in reasons.records])
