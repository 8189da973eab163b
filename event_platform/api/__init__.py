"""The HTTP data API over published snapshots; see `event_platform.api.app`."""

from event_platform.api.app import create_app
from event_platform.api.settings import ApiConfigError, ApiSettings

__all__ = ["ApiConfigError", "ApiSettings", "create_app"]
