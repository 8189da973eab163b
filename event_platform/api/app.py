"""The HTTP data API: FastAPI over the published DuckDB snapshot, read-only.

Only snapshots are read (see `event_platform.store.publication`), so serving never blocks
ingestion and ingestion never makes the API fail. The pieces:
- `routers`: the routes by topic (events, stats, quality, ops), their SQL beside them;
- `auth`: API keys and scopes as dependencies (pii masking, the metrics-only key);
- `errors`: the JSON error shape, and `Guard`, the outermost middleware (latency, 500s);
- `dependencies`: the snapshot reader and metrics registry, kept on `app.state`;
- `models`: the response models of the OpenAPI schema.
"""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from event_platform.api.auth import ApiKeys
from event_platform.api.errors import Guard, register_error_handlers
from event_platform.api.metrics import build_registry
from event_platform.api.routers import ROUTERS
from event_platform.api.snapshot import SnapshotReader
from event_platform.settings import ApiSettings, Settings


def create_app(
    settings: ApiSettings, *, dagster_instance: Callable[[], Any] | None = None
) -> FastAPI:
    """Build the API for `settings`; refuses an unauthenticated non-loopback bind.

    `dagster_instance` returns the instance `/metrics` reads runs from (default: `DAGSTER_HOME`).
    """
    settings.check_bind()
    reader = SnapshotReader(settings.snapshot_path)
    registry, latency = build_registry(
        reader,
        landing_dir=settings.landing_dir,
        warehouse_path=settings.warehouse_path,
        dagster_instance=dagster_instance,
    )
    app = FastAPI(
        title="event_platform data API",
        version="1.0.0",
        description="Read-only access to reconciled events, served from published snapshots.",
    )
    app.state.reader = reader
    app.state.registry = registry
    app.state.api_keys = ApiKeys.from_mapping(settings.api_keys)
    app.add_middleware(Guard, latency=latency)
    register_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    return app


def app_from_env() -> FastAPI:
    """For `uvicorn --factory event_platform.api.app:app_from_env`: the entry point that reads
    the environment, once, when the API is served without `event-platform serve`."""
    return create_app(Settings.from_env().api)
