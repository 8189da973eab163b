"""`event-platform`: one console script whose subcommands live in `event_platform.cli`.

Each command module exposes `register(subparsers)`; heavy imports happen inside the command so
`event-platform --help` stays fast. The settings are read here, once, and handed to the command
as `func(args, settings)`: a bad variable is a usage error before any command starts.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "event_platform.cli.ingest",
    "event_platform.cli.generate",
    "event_platform.cli.pubsub",
    "event_platform.cli.serve",
)


class UsageError(Exception):
    """Bad input from the user: reported as one line on stderr with exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="event-platform",
        description="Validate, store and reconcile event files; see README.md.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from event_platform.ingest.lines import FileChangedError
    from event_platform.settings import Settings, SettingsError
    from event_platform.store.connection import WarehouseError

    try:
        return int(args.func(args, Settings.from_env()) or 0)
    except (UsageError, SettingsError) as exc:
        print(f"event-platform {args.command}: {exc}", file=sys.stderr)
        return 2
    except (WarehouseError, FileChangedError) as exc:
        # One line naming the file and the cause; what the run wrote has been rolled back.
        print(f"event-platform {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # A run in progress has failed and rolled its writes back by the time this is reached.
        print(f"event-platform {args.command}: interrupted", file=sys.stderr)
        return 130
