"""compose.yaml end to end, through the containers: build, up, ingest, kill, recover, tear down.

The image is built from the repository's Dockerfile on a Debian base made here with debootstrap
(no registry is reachable), PostgreSQL and Prometheus are stand-ins built the same way
(stack_images/), and the stack runs on rootful podman with its Docker-compatible API serving
the daemon's DockerRunLauncher. Everything is read back the way an operator would: the
webserver's GraphQL API, the HTTP API container, and Prometheus' HTTP API.

With EVENT_PLATFORM_STACK_PULL=1 (where registries are reachable, as on GitHub's runners) the
official images are pulled instead, and Grafana joins the stack. With
EVENT_PLATFORM_REQUIRE_DEPLOY_TOOLS=1 (set by CI) a missing tool fails the test instead of
skipping it. The timeline (seconds from the test's start) is printed; run with `-s` to see it.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from benchmarks.servers import free_port, graphql, wait_until
from event_platform_tests.deploy.podman_stack import (
    Podman,
    missing_requirement,
    podman_compose,
    podman_storage,
)

ROOT = Path(__file__).resolve().parents[2]
STAND_INS = Path(__file__).resolve().parent / "stack_images"
BASE = "localhost/event-platform-base:bookworm"
IMAGE = "localhost/event-platform:stack-test"
API_KEY = "stack-test-key"
METRICS_KEY = "stack-test-metrics-key"
GRAFANA_PASSWORD = "stack-test-grafana"
PULL = os.environ.get("EVENT_PLATFORM_STACK_PULL") == "1"
PULLED_BASE = "docker.io/library/python:3.11-slim-bookworm"
# Grafana has no Debian package to build a stand-in from: offline, its provisioning is checked
# in test_deploy_static.py only. The pubsub profile is not started here.
SERVICES = ("postgres", "code-location", "webserver", "daemon", "api", "prometheus") + (
    ("grafana",) if PULL else ()
)
BIG_FILE_LINES = 2_000_000
WRITER_STEP = "validated_and_rejected_events"
# The whole test, image builds included, must end within this (it took 6-7 minutes here).
BUDGET_SECONDS = 20 * 60

REASON = missing_requirement(pull=PULL)
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _tools_present() -> None:
    if REASON is not None:
        if os.environ.get("EVENT_PLATFORM_REQUIRE_DEPLOY_TOOLS") == "1":
            pytest.fail(f"compose stack test: {REASON}")
        pytest.skip(f"compose stack test: {REASON}")


RUNS = """{ runsOrError { ... on Runs { results {
  runId status tags { key value } } } } }"""
RUN = """query($id: ID!) { runOrError(runId: $id) { ... on Run {
  status stepStats { stepKey status } } } }"""
CHECK = """query($key: AssetKeyInput!, $check: String!, $partition: String) {
  assetCheckExecutions(assetKey: $key, checkName: $check, partition: $partition, limit: 1) {
    runId status evaluation { success } } }"""
POOL = """{ instance { concurrencyLimit(concurrencyKey: "duckdb_writer") { slotCount } } }"""
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


class Timeline:
    """Marks printed as they pass, and one time budget for the whole test."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.marks: list[tuple[float, str]] = []

    def within(self, cap: float) -> float:
        """A wait's timeout: at most `cap`, and never past the test's budget."""
        left = BUDGET_SECONDS - (time.monotonic() - self.start)
        if left <= 0:
            raise TimeoutError(f"the stack test used up its {BUDGET_SECONDS} s budget")
        return min(cap, left)

    def mark(self, what: str) -> None:
        self.marks.append((time.monotonic() - self.start, what))
        print(f"[stack {self.marks[-1][0]:7.1f}s] {what}", flush=True)


class Stack:
    """The running stack, seen from the host: its ports, its volume, its GraphQL API."""

    def __init__(self, podman: Podman, scratch: Path) -> None:
        self.podman = podman
        self.ports = {
            "webserver": free_port(),
            "api": free_port(),
            "prometheus": free_port(),
            "grafana": free_port(),
        }
        self.env_file = scratch / "stack.env"
        metrics_key = scratch / "metrics_key"
        metrics_key.write_text(METRICS_KEY)
        metrics_key.chmod(0o644)  # read by Prometheus' own user in its container
        settings = [
            "DAGSTER_PG_PASSWORD=stack-test-password",
            f"EVENT_PLATFORM_API_KEYS={API_KEY}:pii,{METRICS_KEY}:metrics",
            f"EVENT_PLATFORM_METRICS_KEY_FILE={metrics_key}",
            f"GRAFANA_ADMIN_PASSWORD={GRAFANA_PASSWORD}",
            f"EVENT_PLATFORM_IMAGE={IMAGE}",
            f"DOCKER_SOCKET={podman.socket}",
            f"DOCKER_SOCKET_GID={podman.socket.stat().st_gid}",
            f"DAGSTER_WEBSERVER_PORT={self.ports['webserver']}",
            f"EVENT_PLATFORM_API_PORT={self.ports['api']}",
            f"PROMETHEUS_PORT={self.ports['prometheus']}",
            f"GRAFANA_PORT={self.ports['grafana']}",
        ]
        if not PULL:
            settings += [
                "POSTGRES_IMAGE=localhost/event-platform-postgres:stack-test",
                "PROMETHEUS_IMAGE=localhost/event-platform-prometheus:stack-test",
            ]
        self.env_file.write_text("\n".join(settings) + "\n")

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        command = [podman_compose(), "-f", str(ROOT / "compose.yaml")]
        command += ["--env-file", str(self.env_file), *args]
        completed = subprocess.run(
            command,
            env=self.podman.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"podman-compose {args[0]} failed: {completed.stderr[-3000:]}")
        return completed

    def in_container(self, script: str) -> str:
        """Run `script` in the code location's container, with its settings and data volume
        (as an operator would with `docker compose exec code-location ...`)."""
        completed = self.podman.run("exec", "event_platform_code-location_1", "sh", "-c", script)
        return completed.stdout

    def land(self, name: str, lines: int, seed: int) -> dict:
        """Generate a file and rename it into the landing folder; returns its truth."""
        self.in_container(
            "mkdir -p /data/staging && "
            f"event-platform generate --lines {lines} --seed {seed} "
            f"--output /data/staging/{name} > /dev/null && "
            f"mv /data/staging/{name} /data/landing/{name}"
        )
        truth = json.loads(self.in_container(f"cat /data/staging/{name}.truth.json"))
        assert truth["lines"] == lines
        return truth

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        return graphql(self.ports["webserver"], query, variables)

    def runs(self, partition: str | None = None) -> list[dict]:
        found = []
        for run in self.graphql(RUNS)["runsOrError"]["results"]:
            tags = {tag["key"]: tag["value"] for tag in run["tags"]}
            if partition is None or tags.get("dagster/partition") == partition:
                found.append({"id": run["runId"], "status": run["status"], "tags": tags})
        return found

    def finished_run(self, partition: str, not_ids: set[str] = frozenset()) -> dict | None:
        for run in self.runs(partition):
            if run["id"] not in not_ids and run["status"] in TERMINAL:
                return run
        return None

    def check_passed(self, partition: str, run_id: str) -> bool:
        executions = self.graphql(
            CHECK,
            {
                "key": {"path": ["reconciliation_report"]},
                "check": "reconciliation_exact",
                "partition": partition,
            },
        )["assetCheckExecutions"]
        latest = executions[0] if executions else None
        return bool(latest and latest["runId"] == run_id and latest["evaluation"]["success"])

    def writer_slot_holders(self) -> list[str]:
        """Runs holding the `duckdb_writer` pool's one slot: the pool is held per run, so every
        ingestion run that has started and not ended holds it."""
        pool = self.graphql(POOL)["instance"]["concurrencyLimit"]
        assert pool["slotCount"] == 1
        return [run["id"] for run in self.runs() if run["status"] in ("STARTING", "STARTED")]

    def api(self, path: str) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.ports['api']}{path}", headers={"X-API-Key": API_KEY}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def prometheus(self, query: str) -> list[dict]:
        url = f"http://127.0.0.1:{self.ports['prometheus']}/api/v1/query?" + (
            urllib.parse.urlencode({"query": query})
        )
        with urllib.request.urlopen(url, timeout=10) as response:
            payload = json.loads(response.read())
        assert payload["status"] == "success", payload
        return payload["data"]["result"]

    def publish(self) -> dict:
        """The published_events asset is not materialised by itself yet: publish explicitly."""
        return json.loads(self.in_container("event-platform publish-snapshot --json"))

    def container_state(self, container: str) -> str:
        return self._inspect(container, "{{.State.Status}}")

    def exit_code(self, container: str) -> int:
        return int(self._inspect(container, "{{.State.ExitCode}}"))

    def started_at(self, container: str) -> str:
        return self._inspect(container, "{{.State.StartedAt}}")

    def _inspect(self, container: str, template: str) -> str:
        return self.podman.run("inspect", "--format", template, container).stdout.strip()


def _build_images(podman: Podman, timeline: Timeline) -> None:
    if PULL:
        podman.build(IMAGE, ROOT, PULLED_BASE, timeout=timeline.within(1200))
        return
    podman.build_debian_base(BASE, timeout=timeline.within(600))
    podman.build(IMAGE, ROOT, BASE, timeout=timeline.within(1200))
    for name in ("postgres", "prometheus"):
        podman.build(
            f"localhost/event-platform-{name}:stack-test",
            STAND_INS,
            BASE,
            containerfile=STAND_INS / f"{name}.Containerfile",
            timeout=timeline.within(600),
        )


def _assert_counts_match_truth(report: dict, truth: dict) -> None:
    """A reconciliation report (from the API) says exactly what the generator wrote."""
    assert report["passed"] is True, report
    assert report["lines_total"] == truth["lines"], (report, truth)
    assert report["valid"] == truth["valid"], (report, truth)
    assert report["duplicates"] == truth["duplicates"], (report, truth)
    assert report["rejected"] == truth["invalid"] + truth["duplicates"], (report, truth)
    assert report["stored_rows"] == truth["valid"], (report, truth)
    assert report["missing_rows"] == report["unexpected_rows"] == 0, report


def test_compose_stack(tmp_path: Path) -> None:
    timeline = Timeline()
    with podman_storage(tmp_path / "podman") as podman:
        _build_images(podman, timeline)
        size = podman.run("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout.strip()
        timeline.mark(f"images built (application image {int(size) / 1e6:.0f} MB)")
        if not PULL:
            base = podman.run("image", "inspect", "--format", "{{.Size}}", BASE).stdout.strip()
            print(f"  the Debian base is {int(base) / 1e6:.0f} MB of it")

        podman.start_service()
        stack = Stack(podman, tmp_path)
        try:
            stack.compose("up", "-d", "--no-build", *SERVICES)
            timeline.mark("compose up returned")
            _first_file_is_ingested_checked_served_and_scraped(stack, timeline)
            _killed_run_and_daemon_recover(stack, timeline)
        finally:
            try:
                stack.compose("down", "--volumes", "--timeout", "10")
                timeline.mark("compose down returned")
            finally:
                left = podman.teardown()
        timeline.mark("torn down")
        assert left == {}, f"left running after teardown: {left}"


def _first_file_is_ingested_checked_served_and_scraped(stack: Stack, timeline: Timeline) -> None:
    wait_until(
        lambda: stack.graphql("{ version }"),
        timeout=timeline.within(180),
        interval=2,
        what="the webserver",
    )
    timeline.mark("webserver answers GraphQL")
    truth = stack.land("first.jsonl", 2_000, seed=1)
    run = wait_until(
        lambda: stack.finished_run("first.jsonl"),
        timeout=timeline.within(180),
        interval=2,
        what="first run",
    )
    assert run["status"] == "SUCCESS", run
    assert run["tags"]["dagster/sensor_name"] == "landing_sensor"
    # The run went to a container of its own, started by the DockerRunLauncher.
    container = run["tags"]["docker/container_id"]
    labels = stack.podman.run("inspect", "--format", "{{json .Config.Labels}}", container).stdout
    assert json.loads(labels)["dagster/run_id"] == run["id"]
    # The run reports SUCCESS just before its process ends: then its container stops.
    wait_until(
        lambda: stack.container_state(container) in ("exited", "stopped"),
        timeout=timeline.within(60),
        what="the run's container to stop",
    )
    assert stack.exit_code(container) == 0
    assert stack.check_passed("first.jsonl", run["id"])
    timeline.mark("first run SUCCESS in its own container; reconciliation_exact passed")

    published = stack.publish()
    assert published["events"] == truth["valid"]
    wait_until(
        lambda: stack.api("/ready"), timeout=timeline.within(60), what="the API to see the snapshot"
    )
    reports = {r["source_file"]: r for r in stack.api("/reconciliation")["files"]}
    _assert_counts_match_truth(reports["first.jsonl"], truth)
    page = stack.api("/events?limit=5")
    assert len(page["items"]) == 5
    timeline.mark("published; the API container serves the events")

    def scraped() -> bool:
        up = stack.prometheus('up{job="event_platform_api"}')
        snapshot = stack.prometheus("event_platform_snapshot_up")
        return bool(up and up[0]["value"][1] == "1" and snapshot and snapshot[0]["value"][1] == "1")

    wait_until(
        scraped, timeout=timeline.within(90), interval=3, what="Prometheus to scrape the API"
    )
    rules = stack.prometheus('ALERTS{alertname="EventPlatformApiDown"}')
    assert rules == []  # the rule is loaded and the API is up, so it is not firing
    loaded = urllib.request.urlopen(
        f"http://127.0.0.1:{stack.ports['prometheus']}/api/v1/rules", timeout=10
    ).read()
    assert b"EventPlatformApiDown" in loaded
    timeline.mark("Prometheus scraped /metrics and loaded the alert rules")
    if PULL:
        _grafana_serves_the_dashboard(stack, timeline)
        timeline.mark("Grafana serves the provisioned dashboard")


def _grafana_serves_the_dashboard(stack: Stack, timeline: Timeline) -> None:
    token = base64.b64encode(f"admin:{GRAFANA_PASSWORD}".encode()).decode()

    def dashboards() -> list[dict]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{stack.ports['grafana']}/api/search?type=dash-db",
            headers={"Authorization": f"Basic {token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    found = wait_until(
        dashboards, timeout=timeline.within(90), interval=3, what="Grafana's dashboards"
    )
    assert "event-platform" in {board["uid"] for board in found}


def _killed_run_and_daemon_recover(stack: Stack, timeline: Timeline) -> None:
    first_runs = {run["id"] for run in stack.runs()}
    big = stack.land("big.jsonl", BIG_FILE_LINES, seed=2)
    timeline.mark(f"landed big.jsonl ({BIG_FILE_LINES:,} lines)")

    def writing_run() -> dict | None:
        for run in stack.runs("big.jsonl"):
            steps = stack.graphql(RUN, {"id": run["id"]})["runOrError"]["stepStats"]
            if any(s["stepKey"] == WRITER_STEP and s["status"] == "IN_PROGRESS" for s in steps):
                return run
        return None

    killed = wait_until(
        writing_run, timeout=timeline.within(180), interval=0.5, what="big.jsonl's ingestion"
    )
    time.sleep(1.0)  # well inside the ingestion of 2M lines
    assert (writing_run() or {}).get("id") == killed["id"]  # still writing
    assert stack.writer_slot_holders() == [killed["id"]]
    run_container = killed["tags"]["docker/container_id"]
    daemon_started = stack.started_at("event_platform_daemon_1")
    stack.podman.run("kill", run_container)
    stack.podman.run("kill", "event_platform_daemon_1")
    wait_until(
        lambda: stack.container_state(run_container) in ("exited", "stopped"),
        timeout=timeline.within(30),
        what="the killed run container to stop",
    )
    assert stack.exit_code(run_container) == 137  # SIGKILL, not a finished run
    timeline.mark("killed the run's container mid-ingest, then the daemon's")

    # Its restart policy may bring it back by itself; otherwise start it as an operator would.
    if stack.container_state("event_platform_daemon_1") != "running":
        stack.podman.run("start", "event_platform_daemon_1", check=False)
    wait_until(
        lambda: stack.container_state("event_platform_daemon_1") == "running",
        timeout=timeline.within(60),
        what="the daemon's container to run again",
    )
    assert stack.started_at("event_platform_daemon_1") != daemon_started  # a new process
    timeline.mark("daemon restarted")
    failed = wait_until(
        lambda: stack.finished_run("big.jsonl"),
        timeout=timeline.within(120),
        interval=2,
        what="run monitoring",
    )
    assert failed["id"] == killed["id"]
    assert failed["status"] == "FAILURE", failed
    timeline.mark("run monitoring marked the killed run FAILURE")
    wait_until(
        lambda: killed["id"] not in stack.writer_slot_holders(),
        timeout=timeline.within(120),
        interval=2,
        what="the dead run's duckdb_writer slot to be freed",
    )
    timeline.mark("the dead run's duckdb_writer slot was freed")

    # Re-land the killed file (a new mtime is a new version) and land another one.
    stack.in_container("touch /data/landing/big.jsonl")
    third = stack.land("third.jsonl", 5_000, seed=3)
    done = {}
    for name in ("big.jsonl", "third.jsonl"):
        done[name] = wait_until(
            lambda name=name: stack.finished_run(name, not_ids={killed["id"]} | first_runs),
            timeout=timeline.within(300),
            interval=2,
            what=f"{name}'s run after recovery",
        )
        assert done[name]["status"] == "SUCCESS", done[name]
        assert stack.check_passed(name, done[name]["id"])
    timeline.mark("after recovery: big.jsonl re-ingested and third.jsonl ingested, checks passed")

    statuses = [run["status"] for run in stack.runs()]
    assert "STARTED" not in statuses and "STARTING" not in statuses, statuses
    published = stack.publish()
    first = {r["source_file"]: r for r in stack.api("/reconciliation")["files"]}["first.jsonl"]
    assert published["events"] == first["valid"] + big["valid"] + third["valid"]
    wait_until(
        lambda: stack.api("/ready")["snapshot"] == Path(published["snapshot"]).name,
        timeout=timeline.within(60),
        what="the API to serve the new snapshot",
    )
    reports = {r["source_file"]: r for r in stack.api("/reconciliation")["files"]}
    _assert_counts_match_truth(reports["big.jsonl"], big)
    _assert_counts_match_truth(reports["third.jsonl"], third)
    timeline.mark("published: counts equal the truth files; nothing lost or doubled")
