"""The code location loads whole: a broken import or dangling key fails here first."""

import dagster as dg

from event_platform.definitions import build_definitions


def test_definitions_load_with_the_lineage(settings) -> None:
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {
        "raw_event_file",
        "validated_events",
        "rejected_events",
        "reconciliation_report",
    } <= keys
    parents = {
        k.to_user_string() for k in graph.get(dg.AssetKey("reconciliation_report")).parent_keys
    }
    assert parents == {"validated_events", "rejected_events"}
    checks = {key.name for key in graph.asset_check_keys}
    assert {"reconciliation_exact", "rejection_rate", "unique_event_hash"} <= checks
    assert (
        defs.resolve_sensor_def("landing_sensor").default_status == dg.DefaultSensorStatus.RUNNING
    )
    assert defs.resolve_job_def("ingest_event_file") is not None
