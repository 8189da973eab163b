"""The `event-platform` console script; one module per subcommand."""

from event_platform.cli.main import UsageError, main

__all__ = ["UsageError", "main"]
