"""Session-scoped fixture: the real Pub/Sub emulator on a free port, for the whole test session.

The `gcloud` wrapper forks a Java server; killing the wrapper alone leaves Java running, so the
emulator starts in its own process group and the group is killed at teardown.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from event_platform.pubsub.admin import setup
from event_platform.pubsub.lines import decode_lines
from event_platform.pubsub.settings import PubSubSettings

START_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ready(host: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}/", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@contextmanager
def running_emulator(start_timeout: float = START_TIMEOUT_S) -> Iterator[str]:
    """Start the emulator on a free port, yield `host:port`, stop its whole process group."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise FileNotFoundError("gcloud is not installed")
    host = f"127.0.0.1:{_free_port()}"
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
        while not _ready(host):
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


@pytest.fixture(scope="session")
def emulator() -> Iterator[str]:
    """Yield `host:port` of a running emulator; `PUBSUB_EMULATOR_HOST` is set meanwhile."""
    if shutil.which("gcloud") is None:
        pytest.skip("gcloud is not installed: the Pub/Sub emulator tests need it")
    previous = os.environ.get("PUBSUB_EMULATOR_HOST")
    with running_emulator() as host:
        os.environ["PUBSUB_EMULATOR_HOST"] = host
        try:
            yield host
        finally:
            if previous is None:
                os.environ.pop("PUBSUB_EMULATOR_HOST", None)
            else:
                os.environ["PUBSUB_EMULATOR_HOST"] = previous


@pytest.fixture
def pubsub(emulator: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PubSubSettings:
    """Fresh topic/subscription per test (created by `setup`), a private data dir, fast batches."""
    suffix = uuid.uuid4().hex[:8]
    env = {
        "EVENT_PLATFORM_DATA_DIR": str(tmp_path / "data"),
        "EVENT_PLATFORM_PUBSUB_PROJECT": "event-platform-test",
        "EVENT_PLATFORM_PUBSUB_TOPIC": f"events-{suffix}",
        "EVENT_PLATFORM_PUBSUB_SUBSCRIPTION": f"events-sub-{suffix}",
        "EVENT_PLATFORM_PUBSUB_BATCH_MAX_SECONDS": "1",
        # The minimum Pub/Sub allows: redelivery after a crash comes 10 s later.
        "EVENT_PLATFORM_PUBSUB_ACK_DEADLINE_SECONDS": "10",
        "EVENT_PLATFORM_PUBSUB_SENSOR_DRAIN_SECONDS": "10",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = PubSubSettings.from_env()
    setup(settings)
    return settings


def publish(settings: PubSubSettings, datas: list[bytes]) -> None:
    """Publish each item as one message and wait until the server has them all."""
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(settings.project, settings.topic)
    for future in [publisher.publish(topic, data) for data in datas]:
        future.result(timeout=30)


def landing_lines(settings: PubSubSettings) -> list[bytes]:
    """Every line the landing reader will see, across all Pub/Sub batch files."""
    files = sorted(settings.landing_dir.glob("*"))
    assert all(f.name.startswith("pubsub-") and f.suffix == ".jsonl" for f in files), files
    return [line for f in files for line in decode_lines(f.read_bytes())]


def run_consume_once(env: dict[str, str], *, text: bool = False) -> subprocess.CompletedProcess:
    """`consume --once` as a real process (the crash tests need one that can be SIGKILLed)."""
    return subprocess.run(
        [sys.executable, "-m", "event_platform.commands.pubsub", "consume", "--once"],
        env=env,
        capture_output=True,
        text=text,
        timeout=60,
    )
