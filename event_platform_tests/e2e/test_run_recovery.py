"""A killed run never wedges ingestion: it is found dead, failed, and its writer turn freed.

Real processes and real signals: the CLI as a subprocess with its own DAGSTER_HOME, SIGKILL and
SIGTERM, and (slow) a real `dagster-daemon` whose run monitoring fails a run whose worker was
killed, in both instance profiles.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import EngineEventData

from benchmarks.servers import process_group, wait_until
from event_platform.runs.launcher import LocalProcessRunLauncher
from event_platform.runs.owner import owner_tags, run_owner
from event_platform.runs.reaper import reap_dead_runs

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = str(Path(sys.executable).with_name("event-platform"))
UNFINISHED = ("NOT_STARTED", "STARTING", "STARTED", "CANCELING")


def environment(tmp_path: Path, profile: str = "dev.yaml", **extra: str) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(ROOT / "deploy" / "dagster" / profile, home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVENT_PLATFORM_", "DAGSTER"))}
    env |= {"DAGSTER_HOME": str(home), "EVENT_PLATFORM_DATA_DIR": str(tmp_path / "data")}
    return env | extra


def generate(tmp_path: Path, name: str, lines: int, seed: int) -> tuple[Path, dict]:
    path = tmp_path / name
    subprocess.run(
        [SCRIPT, "generate", "--lines", str(lines), "--seed", str(seed), "--output", str(path)],
        check=True,
        capture_output=True,
    )
    return path, json.loads(path.with_name(name + ".truth.json").read_text())


def start_ingest(path: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [SCRIPT, "ingest", str(path)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )


def wait_for_text(log: Path, text: str, process: subprocess.Popen, timeout: float = 120) -> None:
    def seen() -> bool:
        assert process.poll() is None, log.read_text()
        return text in log.read_text()

    wait_until(seen, timeout=timeout, interval=0.05, what=repr(text), fatal=AssertionError)


def run_statuses(env: dict[str, str]) -> dict[str, str]:
    """Run id -> status, read by a separate process as another tool would."""
    code = (
        "import dagster as dg, json\n"
        "i = dg.DagsterInstance.get()\n"
        "print(json.dumps({r.run_id: r.status.value for r in i.get_runs()}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_a_killed_ingest_is_failed_and_the_next_ingest_finishes(tmp_path: Path) -> None:
    """SIGKILL mid-write used to leave the run STARTED holding the writer: every later ingest
    spun forever. Now the next ingest fails the dead run, says so, and stores its own file."""
    env = environment(tmp_path)
    big, _ = generate(tmp_path, "big.jsonl", 400_000, seed=1)
    small, truth = generate(tmp_path, "small.jsonl", 500, seed=2)
    log = tmp_path / "big.log"
    killed = start_ingest(big, env, log)
    wait_for_text(log, "big.jsonl: storing", killed)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=10)
    assert list(run_statuses(env).values()) == ["STARTED"]

    result = subprocess.run(
        [SCRIPT, "ingest", "--json", str(small)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["lines"], summary["valid"], summary["rejected"]) == (
        truth["lines"],
        truth["valid"],
        truth["invalid"],
    )
    assert "had died with its process" in result.stderr
    statuses = run_statuses(env)
    assert sorted(statuses.values()) == ["FAILURE", "SUCCESS", "SUCCESS"]  # + its publication
    assert not set(statuses.values()) & set(UNFINISHED)


def test_an_ingest_waiting_for_the_writer_says_so_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = environment(tmp_path)
    big, _ = generate(tmp_path, "big.jsonl", 1_500_000, seed=3)
    small, _ = generate(tmp_path, "small.jsonl", 50, seed=4)
    holder = start_ingest(big, env, tmp_path / "big.log")
    try:
        wait_for_text(tmp_path / "big.log", "big.jsonl: storing", holder)
        log = tmp_path / "small.log"
        waiting = start_ingest(small, env, log)
        wait_for_text(log, "waiting for the warehouse writer", waiting)
        assert "ingesting big.jsonl" in log.read_text()
        sent = time.monotonic()
        waiting.send_signal(signal.SIGTERM)
        assert waiting.wait(timeout=10) == 130
        assert time.monotonic() - sent < 5
        assert log.read_text().rstrip().endswith("event-platform ingest: interrupted")
        # The stopped ingest created no run: the holder's is the only one so far.
        assert list(run_statuses(env).values()) == ["STARTED"]
        patient = start_ingest(small, env, tmp_path / "patient.log")
        wait_for_text(tmp_path / "patient.log", "waiting for the warehouse writer", patient)
    finally:
        holder.wait(timeout=300)
    assert holder.returncode == 0
    assert patient.wait(timeout=120) == 0
    code = (
        "import dagster as dg\n"
        "i = dg.DagsterInstance.get()\n"
        "[run] = [r for r in i.get_runs() if r.tags.get('dagster/partition') == 'small.jsonl']\n"
        "print('\\n'.join(e.user_message for e in i.all_logs(run.run_id)))\n"
    )
    logged = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "waited" in logged and "for the warehouse writer before it started" in logged


def test_sigterm_mid_write_fails_the_run_and_stores_nothing(tmp_path: Path) -> None:
    env = environment(tmp_path)
    big, _ = generate(tmp_path, "big.jsonl", 1_500_000, seed=5)
    log = tmp_path / "big.log"
    process = start_ingest(big, env, log)
    wait_for_text(log, "big.jsonl: storing", process)
    time.sleep(0.5)  # into the chunks, seconds before the last of 1.5M lines
    assert "committing" not in log.read_text()
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 130
    assert time.monotonic() - sent < 5
    assert list(run_statuses(env).values()) == ["FAILURE"]
    import duckdb

    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM events").fetchall() == [(0,)]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_run_owned_by_a_dead_process_is_reaped_and_a_live_one_is_not(tmp_path: Path) -> None:
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        alive = instance.create_run_for_job(_job(), tags=owner_tags())
        dead_tags = {**owner_tags(), "event_platform/pid": str(_dead_pid())}
        dead = instance.create_run_for_job(_job(), tags=dead_tags)
        for run in (alive, dead):
            instance.handle_run_event(
                run.run_id,
                dg.DagsterEvent(
                    event_type_value=dg.DagsterEventType.RUN_START.value, job_name=run.job_name
                ),
            )
        reaped = reap_dead_runs(instance)
        assert [r.run_id for r in reaped] == [dead.run_id]
        assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(alive.run_id).status == dg.DagsterRunStatus.STARTED
        assert reap_dead_runs(instance) == []


def test_the_local_launcher_reports_a_dead_worker_as_failed(tmp_path: Path) -> None:
    """Run monitoring asks the launcher; it answers from the worker's pid in the run's log."""
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        launcher = LocalProcessRunLauncher()
        launcher.register_instance(instance)
        runs = {}
        for name, pid in (("alive", os.getpid()), ("dead", _dead_pid())):
            run = instance.create_run_for_job(_job())
            instance.report_engine_event(
                f"Started process for run (pid: {pid}).",
                run,
                EngineEventData.in_process(pid),
            )
            runs[name] = run
        unknown = instance.create_run_for_job(_job())
        assert launcher.check_run_worker_health(runs["alive"]).status.value == "RUNNING"
        assert launcher.check_run_worker_health(runs["dead"]).status.value == "FAILED"
        assert launcher.check_run_worker_health(unknown).status.value == "RUNNING"


def _job() -> dg.JobDefinition:
    @dg.op
    def noop() -> None:
        return None

    @dg.job
    def probe() -> None:
        noop()

    return probe


RUN_PROFILES = [
    pytest.param("dev.yaml", id="dev-sqlite"),
    pytest.param("production.yaml", id="production-postgres"),
]


@pytest.mark.slow
@pytest.mark.parametrize("profile", RUN_PROFILES)
def test_run_monitoring_fails_a_killed_run_under_the_daemon(
    tmp_path: Path, profile: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon launches the sensor's runs; SIGKILL one's worker mid-write together with the
    code server that started it (as an OOM kill of the whole container would), so nobody is
    left to report the run's end. Run monitoring marks it failed through the launcher's health
    check, the queue moves on and the next file's run succeeds."""
    if profile == "production.yaml":
        request.getfixturevalue("postgres_database")  # sets DAGSTER_PG_* for this test
    pg = {k: v for k, v in os.environ.items() if k.startswith("DAGSTER_PG_")}
    env = environment(tmp_path, profile, **pg)
    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
    landing = tmp_path / "data" / "landing"
    landing.mkdir(parents=True)
    big, _ = generate(tmp_path, "big.jsonl", 1_500_000, seed=6)
    small, truth = generate(tmp_path, "small.jsonl", 300, seed=7)
    daemon = str(Path(sys.executable).with_name("dagster-daemon"))
    args = [daemon, "run", "-w", "workspace.yaml"]
    with dg.DagsterInstance.get() as instance:
        # Create the storage's schema before the daemon and its code server open it too: on
        # SQLite, processes creating it at once corrupt its migration table.
        instance.get_runs(limit=1)
        instance.schedule_storage.all_instigator_state()
    with (
        process_group(args, env=env, cwd=ROOT, log=tmp_path / "daemon.log"),
        dg.DagsterInstance.get() as instance,
    ):
        os.replace(big, landing / "big.jsonl")
        pid = wait_until(
            lambda: _writing_worker(instance, "big.jsonl"),
            timeout=240,
            interval=0.2,
            what="the big file's run to write",
        )
        import psutil

        code_server = psutil.Process(pid).ppid()
        os.kill(code_server, signal.SIGKILL)
        os.kill(pid, signal.SIGKILL)
        os.replace(small, landing / "small.jsonl")

        def recovered() -> dict[str, str] | None:
            found = {
                run.tags["dagster/partition"]: run.status.value
                for run in instance.get_runs()
                if "dagster/partition" in run.tags
            }
            done = found.get("small.jsonl") in ("SUCCESS", "FAILURE")
            return found if done and found.get("big.jsonl") == "FAILURE" else None

        found = wait_until(recovered, timeout=240, interval=1, what="recovery")
        assert found == {"big.jsonl": "FAILURE", "small.jsonl": "SUCCESS"}
        [big_run] = [
            r for r in instance.get_runs() if r.tags.get("dagster/partition") == "big.jsonl"
        ]
        [failure] = instance.get_records_for_run(
            big_run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
        ).records
        assert "Detected run worker status" in failure.event_log_entry.dagster_event.message
        assert not {run.status.value for run in instance.get_runs()} & set(UNFINISHED)

    import duckdb

    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as con:
        stored = con.execute("SELECT source_file, count(*) FROM events GROUP BY ALL").fetchall()
    assert stored == [("small.jsonl", truth["valid"])]


def _writing_worker(instance: dg.DagsterInstance, partition: str) -> int | None:
    """The pid of the worker of `partition`'s run once that run has started writing."""
    for run in instance.get_runs():
        if run.tags.get("dagster/partition") != partition:
            continue
        steps = instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.STEP_START
        ).records
        if any(s.event_log_entry.step_key.startswith("validated") for s in steps):
            owner = run_owner(instance, run, local_launcher=True)
            return owner.pid if owner else None
    return None
