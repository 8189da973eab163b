"""Start and stop real servers for benchmarks and tests: free ports, process groups, readiness
polling, `dagster dev` and the Pub/Sub emulator."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def process_group(args: list[str], *, env: dict[str, str], cwd: Path, log: Path) -> Iterator:
    """Run `args` in its own process group and stop the whole group afterwards.

    `dagster dev` and `gcloud` leave children behind when only the parent is signalled.
    """
    with log.open("wb") as output:
        process = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (a loopback http URL built here)
        payload = json.loads(response.read())
    if payload.get("errors"):
        raise AssertionError(payload["errors"])
    return payload["data"]


def wait_until(
    predicate,
    *,
    timeout: float,
    interval: float = 1.0,
    what: str = "condition",
    fatal: type[Exception] | None = None,
):
    """Poll `predicate` until truthy; errors count as "not yet" unless they are `fatal`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as error:
            if fatal is not None and isinstance(error, fatal):
                raise
            last_error = error
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}; last error: {last_error}")


@contextlib.contextmanager
def dagster_dev(scratch: Path, data_dir: Path, root: Path) -> Iterator[int]:
    """A real `dagster dev` (webserver + daemon) on a free loopback port; yields the port.

    It gets its own DAGSTER_HOME (the dev profile) under `scratch` and reads `data_dir`.
    """
    home = scratch / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(root / "deploy" / "dagster" / "dev.yaml", home / "dagster.yaml")
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "EVENT_PLATFORM_DATA_DIR": str(data_dir)}
    dagster = str(Path(sys.executable).with_name("dagster"))
    args = [dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    log = scratch / "dagster-dev.log"
    with process_group(args, env=env, cwd=root, log=log) as server:

        def serving():
            assert server.poll() is None, f"dagster dev exited:\n{log.read_text()[-3000:]}"
            return graphql(port, "{ version }")

        wait_until(serving, timeout=120, what="dagster dev", fatal=AssertionError)
        yield port


EMULATOR_START_TIMEOUT_S = 60.0


def _emulator_ready(host: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}/", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def running_emulator(start_timeout: float = EMULATOR_START_TIMEOUT_S) -> Iterator[str]:
    """Start the Pub/Sub emulator on a free port, yield `host:port`, stop its whole process
    group: the `gcloud` wrapper forks a Java server, and killing the wrapper alone leaves Java
    running."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise FileNotFoundError("gcloud is not installed")
    host = f"127.0.0.1:{free_port()}"
    data_dir = tempfile.mkdtemp(prefix="pubsub-emulator-")
    log_path = os.path.join(data_dir, "emulator.log")
    env = {**os.environ, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                gcloud,
                "beta",
                "emulators",
                "pubsub",
                "start",
                f"--host-port={host}",
                f"--data-dir={data_dir}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + start_timeout
        while not _emulator_ready(host):
            if proc.poll() is not None or time.monotonic() > deadline:
                with open(log_path, errors="replace") as log:
                    tail = log.read()[-2000:]
                raise RuntimeError(f"Pub/Sub emulator did not start on {host}:\n{tail}")
            time.sleep(0.2)
        yield host
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        # The Java child may outlive the wrapper's exit; make sure the whole group is gone.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(data_dir, ignore_errors=True)
