"""`consume`, `publish` and `pubsub-setup`: the Pub/Sub source from the command line.

`consume` runs the same `drain` as the Dagster sensor, for deployments that want a dedicated
long-running consumer. Pub/Sub failures surface as one line on stderr and a non-zero exit after
bounded retries, never as a traceback or a tight crash loop.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from pathlib import Path

log = logging.getLogger("event_platform.pubsub")


def _settings(args: argparse.Namespace):
    from event_platform.cli import UsageError
    from event_platform.pubsub.settings import PubSubSettings

    try:
        settings = PubSubSettings.from_env()
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
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


def cmd_consume(args: argparse.Namespace) -> int:
    """Drain in a loop (or once with --once); Ctrl-C/SIGTERM finish the current batch, then stop."""
    from event_platform.cli import UsageError
    from event_platform.pubsub.consumer import PubSubError, drain, make_subscriber
    from event_platform.pubsub.status import record_drain

    settings = _settings(args)
    if not settings.subscription:
        raise UsageError(
            "no subscription: set EVENT_PLATFORM_PUBSUB_SUBSCRIPTION or --subscription"
        )
    if args.max_retries < 1:
        raise UsageError("--max-retries must be at least 1")
    _setup_logging()
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        if stopping:
            raise KeyboardInterrupt
        stopping = True
        log.info("signal %d: stopping after the current batch", signum)

    if not args.once:
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
    try:
        subscriber = make_subscriber()
        while True:
            stats = drain(
                subscriber, settings, max_seconds=args.max_seconds, attempts=args.max_retries
            )
            record_drain(settings.status_path, stats, source="cli")
            if stats.pulled or args.once:
                log.info("%s: %s in %.1fs", settings.subscription, stats.summary(), stats.seconds)
            if args.once or stopping:
                return 0
            if not stats.pulled:
                # An empty pull can return at once on GCP: idle briefly instead of spinning.
                time.sleep(1.0)
    except PubSubError as exc:
        return _fail("consume", exc)


def cmd_publish(args: argparse.Namespace) -> int:
    from event_platform.cli import UsageError
    from event_platform.pubsub.admin import file_lines, publish_lines
    from event_platform.pubsub.consumer import PubSubError

    settings = _settings(args)
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


def cmd_setup(args: argparse.Namespace) -> int:
    from event_platform.cli import UsageError
    from event_platform.pubsub.admin import setup
    from event_platform.pubsub.consumer import PubSubError

    settings = _settings(args)
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
    """Stand-alone entry (`python -m event_platform.commands.pubsub`): the CLI's own dispatch."""
    from event_platform.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
