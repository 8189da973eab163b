"""`consume`, `publish` and `pubsub-setup`: the Pub/Sub source from the command line.

`consume` runs the same `drain` as the Dagster sensor, for deployments that want a dedicated
long-running consumer. SIGTERM or SIGINT stop it between batches (exit status 0): the batch in
flight is written and acked, nothing more is pulled. Pub/Sub failures surface as one line on
stderr and a non-zero exit after bounded retries, never as a traceback or a tight crash loop.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from event_platform.settings import PubSubSettings, Settings

log = logging.getLogger("event_platform.pubsub")


def _settings(args: argparse.Namespace, tree: Settings) -> PubSubSettings:
    """The Pub/Sub section, with the command line's project, topic or subscription over it."""
    settings = tree.pubsub
    overrides = {
        key: getattr(args, key)
        for key in ("project", "topic", "subscription")
        if getattr(args, key, None)
    }
    if overrides:
        from dataclasses import replace

        settings = replace(settings, **overrides)
    return settings


def _setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _fail(command: str, exc: Exception) -> int:
    print(f"event-platform {command}: {exc}", file=sys.stderr)
    return 1


class StopRequest:
    """The first SIGTERM/SIGINT asks `consume` to stop between batches; a second one stops now.

    Kubernetes sends SIGTERM and kills the pod 30 s later, so the request is honoured before
    the next pull, not at the end of the drain's time budget. A second signal (an impatient
    Ctrl-C) raises KeyboardInterrupt: a batch written but not acked is then redelivered, so
    that is still safe, only wasteful.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal_name: str | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequest:
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *_exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, _frame: object) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name
        self.event.set()
        log.info("%s received: finishing the batch in flight, then stopping", self.signal_name)

    def requested(self) -> bool:
        return self.event.is_set()


def cmd_consume(args: argparse.Namespace, tree: Settings) -> int:
    """Drain in a loop (or once with --once); SIGTERM/SIGINT stop it between batches (exit 0)."""
    from event_platform.cli.main import UsageError
    from event_platform.pubsub.consumer import PubSubError, drain, make_subscriber
    from event_platform.pubsub.status import record_drain

    settings = _settings(args, tree)
    if not settings.subscription:
        raise UsageError(
            "no subscription: set EVENT_PLATFORM_PUBSUB_SUBSCRIPTION or --subscription"
        )
    if args.max_retries < 1:
        raise UsageError("--max-retries must be at least 1")
    _setup_logging()
    with StopRequest() as stop:
        try:
            subscriber = make_subscriber()
            while not stop.requested():
                stats = drain(
                    subscriber,
                    settings,
                    max_seconds=args.max_seconds,
                    attempts=args.max_retries,
                    should_stop=stop.requested,
                )
                record_drain(settings.status_path, stats, source="cli")
                if stats.pulled or args.once:
                    log.info(
                        "%s: %s in %.1fs", settings.subscription, stats.summary(), stats.seconds
                    )
                if args.once:
                    break
                if not stats.pulled:
                    # An empty pull can return at once on GCP: idle briefly instead of spinning.
                    stop.event.wait(1.0)
        except PubSubError as exc:
            return _fail("consume", exc)
    if stop.signal_name is not None:
        log.info(
            "stopped on %s: every batch pulled was written and acked; the rest stays in %s",
            stop.signal_name,
            settings.subscription,
        )
    return 0


def cmd_publish(args: argparse.Namespace, tree: Settings) -> int:
    from event_platform.cli.main import UsageError
    from event_platform.pubsub.admin import file_lines, publish_lines
    from event_platform.pubsub.consumer import PubSubError

    settings = _settings(args, tree)
    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    if not settings.topic:
        raise UsageError("no topic: pass --topic or set EVENT_PLATFORM_PUBSUB_TOPIC")
    try:
        stats = publish_lines(settings.project, settings.topic, file_lines(path))
    except PubSubError as exc:
        return _fail("publish", exc)
    print(
        f"published {stats.published} message(s) to {settings.topic} in {stats.seconds:.2f}s "
        f"({stats.per_second:,.0f} msgs/s); skipped {stats.skipped_empty} empty line(s)"
    )
    return 0


def cmd_setup(args: argparse.Namespace, tree: Settings) -> int:
    from event_platform.cli.main import UsageError
    from event_platform.pubsub.admin import setup
    from event_platform.pubsub.consumer import PubSubError

    settings = _settings(args, tree)
    if not settings.topic or not settings.subscription:
        raise UsageError("need a topic and a subscription (env or --topic/--subscription)")
    try:
        for line in setup(settings):
            print(line)
    except PubSubError as exc:
        return _fail("pubsub-setup", exc)
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", help="GCP project (env EVENT_PLATFORM_PUBSUB_PROJECT)")
    parser.add_argument("--topic", help="topic id (env EVENT_PLATFORM_PUBSUB_TOPIC)")
    parser.add_argument(
        "--subscription", help="subscription id (env EVENT_PLATFORM_PUBSUB_SUBSCRIPTION)"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    consume = subparsers.add_parser(
        "consume", help="pull Pub/Sub messages into landing-folder micro-batch files"
    )
    _common(consume)
    consume.add_argument("--once", action="store_true", help="drain once and exit")
    consume.add_argument(
        "--max-seconds", type=float, default=30.0, help="time budget of one drain (default 30)"
    )
    consume.add_argument(
        "--max-retries",
        type=int,
        default=4,
        help="attempts per Pub/Sub call before giving up, with exponential backoff (default 4)",
    )
    consume.set_defaults(func=cmd_consume)

    publish = subparsers.add_parser("publish", help="publish each line of FILE as one message")
    publish.add_argument("file", metavar="FILE")
    _common(publish)
    publish.set_defaults(func=cmd_publish)

    setup = subparsers.add_parser(
        "pubsub-setup", help="create topic, subscription and dead-letter resources if missing"
    )
    _common(setup)
    setup.set_defaults(func=cmd_setup)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (`python -m event_platform.cli.pubsub`): the CLI's own dispatch."""
    from event_platform.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
