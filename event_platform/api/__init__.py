"""The HTTP data API over published snapshots; see `event_platform.api.app`.

Names are imported on first use, so `event_platform.api.privacy` (used by publication) does not
load FastAPI into the Dagster code location.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from event_platform.api.app import create_app
    from event_platform.api.settings import ApiConfigError, ApiSettings

__all__ = ["ApiConfigError", "ApiSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from event_platform.api.app import create_app

        return create_app
    if name in ("ApiConfigError", "ApiSettings"):
        from event_platform.api import settings

        return getattr(settings, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
