"""The HTTP data API over published snapshots; see `event_platform.api.app`.

Names are imported on first use, so `event_platform.api.privacy` (used by publication) does not
load FastAPI into the Dagster code location. Its settings are `event_platform.settings.ApiSettings`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from event_platform.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from event_platform.api.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
