"""Subcommands of the `event-platform` console script, one module each."""
