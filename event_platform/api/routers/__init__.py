"""The API's routes by topic, each an `APIRouter` with its SQL beside it.

Every SQL statement is parametrised; only fixed fragments are concatenated. No module here uses
`from __future__ import annotations`: FastAPI reads the `Annotated` dependency types at import.
"""

from event_platform.api.routers import events, ops, quality, stats

# In the order the OpenAPI schema lists them.
ROUTERS = (events.router, stats.router, quality.router, ops.router)

__all__ = ["ROUTERS"]
