"""Start and stop real servers for tests: free ports, process groups, readiness polling."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
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
    with urllib.request.urlopen(request, timeout=30) as response:
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
            last_error = error
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}; last error: {last_error}")


@contextlib.contextmanager
def dagster_dev(scratch: Path, data_dir: Path, root: Path) -> Iterator[int]:
    """A real `dagster dev` (webserver + daemon) on a free loopback port; yields the port.

    It gets its own DAGSTER_HOME (the dev profile) under `scratch` and reads `data_dir`.
    """
    import shutil
    import sys

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
