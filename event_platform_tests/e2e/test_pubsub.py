"""Pub/Sub source against the real emulator: every message lands as exactly one line, acks only
after the file is durable, a crash before the ack loses nothing, and failures are one clean line."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest
from google.cloud import pubsub_v1

from benchmarks.servers import wait_until
from event_platform.cli.pubsub import main as pubsub_main
from event_platform.pubsub.consumer import drain, make_subscriber
from event_platform.pubsub.message_lines import UNIT_SEPARATOR, decode_lines, encode_lines, to_line
from event_platform.settings import PubSubSettings, Settings
from event_platform_tests.conftest import event_line
from event_platform_tests.pubsub_emulator import (
    crash_between_write_and_ack,
    landing_lines,
    publish,
    pubsub_hop,
    run_consume_once,
    start_consume,
)

PRETTY = b'{\n  "event_type": 7,\n  "amount": 1.10,\n  "dup": 1,\n  "dup": 2,\n  "s": "a b"\n}'
ADVERSARIAL = [
    event_line(1).encode(),
    event_line(2).encode(),
    b'{"event_type": 7, "event_time": ',  # truncated JSON
    b'{"a": 1,}',  # trailing comma: lenient parsers accept it
    b"\xff\xfe not utf-8 \xc3\x28",
    PRETTY,
    b"not json\nsecond part",
    b'{"x": NaN,\n "y": 1}',  # NaN is not JSON: must not be "compacted" into validity
    b"\xef\xbb\xbf" + event_line(3).encode(),  # leading BOM
    b"   ",
    b'"just a string"',
    event_line(4).encode() + b"\r",
]


def test_line_rule_keeps_one_line_and_token_bytes() -> None:
    compact = to_line(PRETTY)
    assert b"\n" not in compact
    assert compact == b'{"event_type": 7,"amount": 1.10,"dup": 1,"dup": 2,"s": "a b"}'
    assert to_line(b"not json\nsecond") == b"not json" + UNIT_SEPARATOR + b"second"
    assert to_line(b'{"x": NaN,\n "y": 1}') == b'{"x": NaN,' + UNIT_SEPARATOR + b' "y": 1}'
    assert to_line(b'{"a": "x"}') == b'{"a": "x"}'
    assert to_line(b"\xff\n") == b"\xff" + UNIT_SEPARATOR
    # The landing reader drops one BOM at the start of a file: the first line keeps its own.
    body = encode_lines([b"\xef\xbb\xbf{}", b"{}"])
    assert body.startswith(b"\xef\xbb\xbf\xef\xbb\xbf")
    assert decode_lines(body) == [b"\xef\xbb\xbf{}", b"{}"]


@pytest.mark.slow
def test_adversarial_and_generated_messages_land_once_each(
    pubsub: PubSubSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    generated = tmp_path / "generated.jsonl"
    generated.write_text("".join(event_line(i) + "\n" for i in range(100, 2600)))
    rc = pubsub_main(["publish", str(generated), "--topic", pubsub.topic])
    assert rc == 0
    assert "published 2500 message(s)" in capsys.readouterr().out
    publish(pubsub, ADVERSARIAL)
    expected = [to_line(d) for d in ADVERSARIAL] + generated.read_bytes().splitlines()

    stats = drain(make_subscriber(), pubsub, max_seconds=20)

    assert stats.pulled == stats.written == stats.acked == len(expected)
    assert stats.redelivered == 0
    lines = landing_lines(pubsub)
    assert Counter(lines) == Counter(expected)
    # Single-line messages are byte-for-byte what was published.
    single = [d for d in ADVERSARIAL if b"\n" not in d]
    assert not Counter(single) - Counter(lines)
    assert not list(pubsub.landing_dir.glob(".*")), "temp files left behind"
    # Everything was acked: nothing comes back.
    again = drain(make_subscriber(), pubsub, max_seconds=5)
    assert again.pulled == 0 and again.exhausted


@pytest.mark.slow
def test_setup_is_idempotent_and_sets_dead_letter_policy(
    pubsub: PubSubSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert pubsub_main(["pubsub-setup"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and all(line.startswith("exists") for line in out), out
    sub = pubsub_v1.SubscriberClient().get_subscription(
        subscription=f"projects/{pubsub.project}/subscriptions/{pubsub.subscription}"
    )
    assert sub.dead_letter_policy.max_delivery_attempts == 5
    assert sub.dead_letter_policy.dead_letter_topic.endswith(f"/{pubsub.topic}-dead-letter")


@pytest.mark.slow
def test_crash_between_write_and_ack_loses_nothing(
    pubsub: PubSubSettings, emulator: str, tmp_path: Path
) -> None:
    published = [event_line(i).encode() for i in range(200)]
    publish(pubsub, published)
    crash_between_write_and_ack(emulator, tmp_path / "consume.log")
    first = landing_lines(pubsub)
    assert first and set(first) <= set(published)

    # Redelivery comes after the 10 s ack deadline; keep draining until all are accounted for.
    total_pulled = redelivered = 0
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        stats = drain(make_subscriber(), pubsub, max_seconds=5)
        total_pulled += stats.pulled
        redelivered += stats.redelivered
        assert stats.acked == stats.pulled
        if set(landing_lines(pubsub)) == set(published) and total_pulled >= len(first):
            break
    lines = landing_lines(pubsub)
    assert set(lines) == set(published), "messages lost"
    assert max(Counter(lines).values()) <= 2
    assert redelivered >= len(first), "the crashed batch must come back as redeliveries"
    final = drain(make_subscriber(), pubsub, max_seconds=3)
    assert final.pulled == 0


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_endpoint_is_one_clean_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{_closed_port()}",
        "EVENT_PLATFORM_DATA_DIR": str(tmp_path),
        "EVENT_PLATFORM_PUBSUB_SUBSCRIPTION": "nowhere-sub",
    }
    started = time.monotonic()
    result = run_consume_once(env, text=True)
    assert time.monotonic() - started < 30
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "event-platform consume:" in line]
    assert len(errors) == 1, result.stderr
    assert "reachable" in errors[0]
    assert "Traceback" not in result.stderr


def test_missing_subscription_is_a_usage_error(tmp_path: Path) -> None:
    env = {**os.environ, "EVENT_PLATFORM_DATA_DIR": str(tmp_path)}
    env.pop("EVENT_PLATFORM_PUBSUB_SUBSCRIPTION", None)
    result = run_consume_once(env, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "subscription" in result.stderr


@pytest.mark.slow
def test_sensor_tick_drains_into_landing_files(pubsub: PubSubSettings) -> None:
    from event_platform.defs.pubsub import pubsub_defs
    from event_platform.defs.pubsub.assets import pubsub_subscription
    from event_platform.defs.pubsub.sensors import build_pubsub_sensor
    from event_platform.defs.resources import PubSubResource

    published = [event_line(i).encode() for i in range(50)]
    publish(pubsub, published)
    sensor = build_pubsub_sensor(pubsub)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    resource = PubSubResource.from_settings(pubsub)
    with dg.DagsterInstance.ephemeral() as instance:
        result = sensor(dg.build_sensor_context(instance=instance, resources={"pubsub": resource}))
    assert isinstance(result, dg.SensorResult)
    assert not result.run_requests
    assert "pulled 50" in result.skip_reason.skip_message
    assert Counter(landing_lines(pubsub)) == Counter(published)
    observation, check = result.asset_events
    assert observation.metadata["total_acked"].value == 50
    assert check.passed

    # The observable source asset reads the same status file.
    observed = pubsub_subscription.observe_fn(pubsub=resource)  # type: ignore[attr-defined]
    assert observed.data_version.value == "acked-50"
    defs = pubsub_defs(pubsub)
    assert defs.resolve_asset_graph().get_all_asset_keys() == {dg.AssetKey("pubsub_subscription")}


def test_sensor_is_stopped_without_subscription(monkeypatch: pytest.MonkeyPatch) -> None:
    from event_platform.defs.pubsub.sensors import build_pubsub_sensor

    monkeypatch.delenv("EVENT_PLATFORM_PUBSUB_SUBSCRIPTION", raising=False)
    unsubscribed = Settings.from_env().pubsub
    assert build_pubsub_sensor(unsubscribed).default_status == dg.DefaultSensorStatus.STOPPED


@pytest.mark.slow
def test_status_is_valid_json(pubsub: PubSubSettings) -> None:
    publish(pubsub, [event_line(1).encode()])
    assert pubsub_main(["consume", "--once"]) == 0
    status = json.loads(pubsub.status_path.read_text())
    assert status["totals"]["acked"] == 1 and status["last_drain"]["source"] == "cli"


BACKLOG = 20_000
SMALL_BATCH = 50


def _after_signal(log: str, signal_name: str) -> list[str]:
    """The consumer's log lines written after it handled the signal (one thread: in order)."""
    lines = log.splitlines()
    handled = [i for i, line in enumerate(lines) if f"{signal_name} received" in line]
    assert len(handled) == 1, log
    return lines[handled[0] + 1 :]


@pytest.mark.slow
@pytest.mark.parametrize("mode", [[], ["--once"]], ids=["long-running", "once"])
def test_sigterm_stops_between_batches_and_loses_nothing(
    pubsub: PubSubSettings, tmp_path: Path, mode: list[str]
) -> None:
    """A backlog far bigger than one batch, a real SIGTERM: the consumer writes and acks the
    batch in flight, exits 0 well inside Kubernetes' 30 s grace period, and every message is
    then either in a landing file or still in the subscription."""
    published = [event_line(i).encode() for i in range(BACKLOG)]
    source = tmp_path / "backlog.jsonl"
    source.write_bytes(b"\n".join(published) + b"\n")
    assert pubsub_main(["publish", str(source)]) == 0
    env = {**os.environ, "EVENT_PLATFORM_PUBSUB_BATCH_MAX_MESSAGES": str(SMALL_BATCH)}
    log = tmp_path / "consume.log"
    # A drain budget far beyond the grace period: only the signal can explain a prompt exit.
    consumer = start_consume(env, *mode, "--max-seconds", "600", log=log)
    try:
        wait_until(
            lambda: len(list(pubsub.landing_dir.glob("pubsub-*.jsonl"))) >= 3,
            timeout=60,
            interval=0.05,
            what="three batch files",
        )
        consumer.send_signal(signal.SIGTERM)
        returncode = consumer.wait(timeout=25)
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait()
    text = log.read_text()
    assert returncode == 0, text
    after = _after_signal(text, "SIGTERM")
    assert len([line for line in after if " wrote " in line]) <= 1, text  # the batch in flight
    stopped = [line for line in after if "stopped on SIGTERM" in line]
    assert len(stopped) == 1, text
    assert "Traceback" not in text
    landed_by_consumer = landing_lines(pubsub)
    assert 3 * SMALL_BATCH <= len(landed_by_consumer) < BACKLOG

    # The rest is still in the subscription: drain it and account for every message.
    redelivered = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        stats = drain(make_subscriber(), replace(pubsub, batch_max_messages=1000), max_seconds=30)
        redelivered += stats.redelivered
        assert stats.acked == stats.pulled
        if stats.exhausted and set(landing_lines(pubsub)) >= set(published):
            break
    lines = landing_lines(pubsub)
    assert set(lines) == set(published), "messages lost"
    redelivered += json.loads(pubsub.status_path.read_text())["totals"]["redelivered"]
    assert len(lines) - len(published) <= redelivered, "a message landed twice unredelivered"


@pytest.mark.slow
@pytest.mark.parametrize("mode", [[], ["--once"]], ids=["long-running", "once"])
def test_sigterm_stops_an_idle_consumer_inside_a_long_pull(
    pubsub: PubSubSettings, emulator: str, tmp_path: Path, mode: list[str]
) -> None:
    """An empty subscription and a 120 s batch window: the pull waiting for messages must not
    hold the shutdown past Kubernetes' 30 s grace period."""
    log = tmp_path / "consume.log"
    with pubsub_hop(emulator) as hop:
        env = {
            **os.environ,
            "PUBSUB_EMULATOR_HOST": hop.address,
            "EVENT_PLATFORM_PUBSUB_BATCH_MAX_SECONDS": "120",
        }
        consumer = start_consume(env, *mode, "--max-seconds", "600", log=log)
        try:
            assert hop.pulling.wait(30), log.read_text()
            consumer.send_signal(signal.SIGTERM)
            returncode = consumer.wait(timeout=25)
        finally:
            if consumer.poll() is None:
                consumer.kill()
                consumer.wait()
    text = log.read_text()
    assert returncode == 0, text
    assert any("stopped on SIGTERM" in line for line in _after_signal(text, "SIGTERM")), text
    assert not list(pubsub.landing_dir.glob("*.jsonl"))
