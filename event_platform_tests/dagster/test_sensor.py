"""The landing sensor, evaluated against a real Dagster instance."""

from __future__ import annotations

import json
import os
import time

import dagster as dg
import pytest

from event_platform.defs.ingestion.partitions import event_files
from event_platform.defs.ingestion.sensors import MAX_FILES_PER_TICK, build_landing_sensor
from event_platform.defs.resources import PlatformResource


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


def tick(instance, settings, cursor=None):
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"platform": PlatformResource.from_settings(settings)},
    )
    result = build_landing_sensor()(context)
    if isinstance(result, dg.SkipReason):
        return [], cursor, result
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(event_files.name, list(request.partition_keys))
    return result.run_requests, result.cursor, result


def test_new_files_become_partitions_and_runs(settings, instance) -> None:
    (settings.landing_dir / "a.jsonl").write_text("{}\n")
    (settings.landing_dir / "b.jsonl").write_text("{}\n")
    (settings.landing_dir / ".c.jsonl").write_text("{}\n")  # still being written
    (settings.landing_dir / "d.jsonl.tmp").write_text("{}\n")  # still being written
    requests, cursor, _ = tick(instance, settings)
    assert sorted(r.partition_key for r in requests) == ["a.jsonl", "b.jsonl"]
    assert set(instance.get_dynamic_partitions(event_files.name)) == {"a.jsonl", "b.jsonl"}
    requests, cursor, skip = tick(instance, settings, cursor)
    assert requests == [] and "no new files" in skip.skip_message


def test_a_renamed_in_file_and_a_new_version_are_picked_up(settings, instance) -> None:
    old = settings.landing_dir / ".late.jsonl.tmp"
    old.write_text("{}\n")
    os.utime(old, ns=(1, 1))  # written long ago, renamed in later
    (settings.landing_dir / "first.jsonl").write_text("{}\n")
    requests, cursor, _ = tick(instance, settings)
    assert [r.partition_key for r in requests] == ["first.jsonl"]
    first_key = requests[0].run_key
    time.sleep(0.01)
    os.replace(old, settings.landing_dir / "late.jsonl")
    requests, cursor, _ = tick(instance, settings, cursor)
    assert [r.partition_key for r in requests] == ["late.jsonl"]
    time.sleep(0.01)
    (settings.landing_dir / "first.jsonl").write_text("{}\n{}\n")  # a new version
    requests, cursor, _ = tick(instance, settings, cursor)
    assert [r.partition_key for r in requests] == ["first.jsonl"]
    assert requests[0].run_key != first_key
    assert requests[0].run_key.startswith("first.jsonl@")


def test_the_cursor_stays_small_with_100k_files(settings, instance) -> None:
    for index in range(100_000):
        (settings.landing_dir / f"f{index:06d}.jsonl").touch()
    cursor, seen = None, []
    for _ in range(3):
        requests, cursor, _ = tick(instance, settings, cursor)
        assert len(requests) == MAX_FILES_PER_TICK
        seen += [r.partition_key for r in requests]
        assert len(cursor) < 200
        assert json.loads(cursor)["name"] == requests[-1].partition_key
    assert len(set(seen)) == 3 * MAX_FILES_PER_TICK  # no file is requested twice
