"""What routes take from the app: its snapshot reader and metrics registry, kept on `app.state`.

These are `async` so FastAPI resolves them on the event loop instead of a worker thread: they
only read an attribute.
"""

from typing import Annotated

from fastapi import Depends
from prometheus_client import CollectorRegistry
from starlette.requests import Request

from event_platform.api.snapshot import SnapshotReader


async def snapshot_reader(request: Request) -> SnapshotReader:
    return request.app.state.reader


async def metrics_registry(request: Request) -> CollectorRegistry:
    return request.app.state.registry


Reader = Annotated[SnapshotReader, Depends(snapshot_reader)]
Registry = Annotated[CollectorRegistry, Depends(metrics_registry)]
