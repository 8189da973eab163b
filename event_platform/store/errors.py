"""Why the warehouse cannot be used, as exceptions whose `str()` is one line for the user."""

from __future__ import annotations


class WarehouseError(RuntimeError):
    """The warehouse cannot be used; `str()` is one line naming the file and the cause."""


class StoreBusyError(WarehouseError):
    """The warehouse stayed locked by another process for longer than we wait."""


class SchemaVersionError(WarehouseError):
    """The warehouse's schema version is not the one this release reads; says what to do."""
