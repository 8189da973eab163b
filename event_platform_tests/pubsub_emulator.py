"""Session-scoped fixture: the real Pub/Sub emulator on a free port, for the whole test session.

The emulator is started by `benchmarks.servers.running_emulator`, which `pubsub_bench` uses too.

`pubsub_hop` puts a real gRPC hop between a consumer and the emulator. It tells when the
consumer is waiting in a pull, and it can hold `Acknowledge`: the consumer is then provably
between "file renamed" and "acked", where the crash tests kill it (no test hook in the consumer).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from benchmarks.servers import running_emulator
from event_platform.pubsub.admin import setup
from event_platform.pubsub.message_lines import decode_lines
from event_platform.settings import PubSubSettings, Settings


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
    settings = Settings.from_env().pubsub
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


CONSUME = [sys.executable, "-m", "event_platform.cli.pubsub", "consume"]


def run_consume_once(env: dict[str, str], *, text: bool = False) -> subprocess.CompletedProcess:
    """`consume --once` as a real process, run to its end."""
    return subprocess.run([*CONSUME, "--once"], env=env, capture_output=True, text=text, timeout=60)


def start_consume(env: dict[str, str], *args: str, log: Path) -> subprocess.Popen:
    """`consume` as a real process that a test can signal; its stderr (the log) goes to `log`."""
    with log.open("wb") as output:
        return subprocess.Popen([*CONSUME, *args], env=env, stdout=output, stderr=subprocess.STDOUT)


@dataclass
class Hop:
    """A gRPC hop to the emulator: where to point the consumer, and what it has seen."""

    address: str
    pulling: threading.Event = field(default_factory=threading.Event)
    ack_held: threading.Event = field(default_factory=threading.Event)


@contextmanager
def pubsub_hop(emulator_host: str, *, hold_acks: bool = False) -> Iterator[Hop]:
    """A real gRPC server that forwards every call to the emulator byte for byte.

    `pulling` is set when a Pull is forwarded. With `hold_acks`, `Acknowledge` never reaches
    the emulator: it waits until the hop closes, then fails as UNAVAILABLE, like a lost network.
    """
    import grpc

    upstream = grpc.insecure_channel(emulator_host)
    closing = threading.Event()
    hop = Hop(address="")

    def forwarder(method: str) -> grpc.RpcMethodHandler:
        forward = upstream.unary_unary(method)  # no (de)serializers: bytes in, bytes out

        def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
            if method.endswith("/Pull"):
                hop.pulling.set()
            if hold_acks and method.endswith("/Acknowledge"):
                hop.ack_held.set()
                closing.wait(120)
                context.abort(grpc.StatusCode.UNAVAILABLE, "acknowledge held by the test")
            try:
                return forward(request, timeout=context.time_remaining())
            except grpc.RpcError as error:  # pass the emulator's status on (e.g. an empty pull)
                context.abort(error.code(), error.details() or "")

        return grpc.unary_unary_rpc_method_handler(handle)

    class Forward(grpc.GenericRpcHandler):
        def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
            return forwarder(handler_call_details.method)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), handlers=[Forward()])
    hop.address = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    server.start()
    try:
        yield hop
    finally:
        closing.set()
        server.stop(grace=None)
        upstream.close()


def crash_between_write_and_ack(emulator_host: str, log: Path) -> None:
    """Run `consume --once` through `held_acks` and SIGKILL it once its first ack is sent.

    By then its first batch file is renamed and fsynced and nothing is acked: the messages of
    that batch must come back as redeliveries after the ack deadline.
    """
    with pubsub_hop(emulator_host, hold_acks=True) as hop:
        env = {**os.environ, "PUBSUB_EMULATOR_HOST": hop.address}
        consumer = start_consume(env, "--once", log=log)
        try:
            if not hop.ack_held.wait(60):
                raise AssertionError(f"the consumer never acked:\n{log.read_text()}")
        finally:
            consumer.kill()
            consumer.wait(timeout=10)
