"""End to end through a running `dagster dev`: file dropped -> sensor -> run -> check results.

Starts the real webserver and daemon on a free loopback port with a temporary DAGSTER_HOME and
data folder, and reads everything back through the GraphQL API the UI itself uses.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.servers import dagster_dev, graphql, wait_until
from event_platform_tests.conftest import event_line, write_lines

# A real `dagster dev`, webserver and daemon.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

CHECKS_QUERY = """
query($key: AssetKeyInput!, $check: String!, $partition: String) {
  assetCheckExecutions(assetKey: $key, checkName: $check, partition: $partition, limit: 5) {
    runId status partition evaluation { success severity }
  }
}
"""
RUNS_QUERY = """
{ runsOrError { ... on Runs { results { runId status tags { key value } } } } }
"""


def test_a_dropped_file_is_ingested_and_checked_by_the_running_daemon(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "landing").mkdir(parents=True)
    log = tmp_path / "dagster-dev.log"
    with dagster_dev(tmp_path, data, ROOT) as port:
        staging = data / "landing" / ".drop.jsonl.tmp"
        write_lines(staging, [event_line(i) for i in range(50)] + ["{broken"])
        staging.rename(data / "landing" / "drop.jsonl")

        def finished_run():
            runs = graphql(port, RUNS_QUERY)["runsOrError"]["results"]
            done = [r for r in runs if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
            return done[0] if done else None

        try:
            run = wait_until(finished_run, timeout=180, interval=2, what="the sensor's run")
        except TimeoutError:
            print(log.read_text()[-5000:])
            raise
        assert run["status"] == "SUCCESS"
        tags = {tag["key"]: tag["value"] for tag in run["tags"]}
        assert tags["dagster/partition"] == "drop.jsonl"
        assert tags["dagster/sensor_name"] == "landing_sensor"

        def check(asset: str, name: str):
            executions = graphql(
                port,
                CHECKS_QUERY,
                {"key": {"path": [asset]}, "check": name, "partition": "drop.jsonl"},
            )["assetCheckExecutions"]
            return executions[0] if executions else None

        reconciliation = check("reconciliation_report", "reconciliation_exact")
        assert reconciliation["runId"] == run["runId"]
        assert reconciliation["evaluation"]["success"] is True
        rate = check("rejected_events", "rejection_rate")
        assert rate["evaluation"] == {"success": False, "severity": "WARN"}  # 1 of 51 lines
