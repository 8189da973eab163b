"""Operations: liveness, readiness and Prometheus metrics.

`/health` and `/ready` need no key (probes carry none). `/metrics` needs a key with the `metrics`
scope when keys are configured, so Prometheus holds a credential that cannot read events.
"""

import logging
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from event_platform.api.auth import require_scope
from event_platform.api.dependencies import Reader, Registry
from event_platform.api.models import ErrorBody, Status
from event_platform.api.snapshot import (
    NO_SNAPSHOT,
    UNREADABLE_SNAPSHOT,
    SnapshotUnavailableError,
)

logger = logging.getLogger("event_platform.api")

router = APIRouter(tags=["ops"])

metrics_scraper = require_scope("metrics", "scraping /metrics needs a key with the metrics scope")


@router.get("/health", response_model=Status)
def health(reader: Reader) -> dict[str, Any]:
    """Liveness only: `ok` means the process answers, not that data is served (`/ready`).

    `snapshot` names the file `current.duckdb` points at (found with a stat, not opened),
    or is null when nothing is published. Needs no key.
    """
    published = reader.published_name()
    detail = (
        "alive; /ready checks that the snapshot opens"
        if published
        else f"alive; {NO_SNAPSHOT}; /ready answers 503 until then"
    )
    return {"status": "ok", "snapshot": published, "detail": detail}


@router.get("/ready", response_model=Status, responses={503: {"model": ErrorBody}})
def ready(reader: Reader) -> Any:
    """Readiness: a snapshot is published and opens. Needs no key."""
    try:
        with reader.cursor() as cur:
            (published_at,) = cur.execute("SELECT published_at FROM snapshot_info").fetchone()
    except SnapshotUnavailableError as exc:
        return JSONResponse({"error": "not_ready", "detail": exc.detail}, 503)
    except Exception as exc:
        logger.warning("not ready: %s", type(exc).__name__)
        return JSONResponse({"error": "not_ready", "detail": UNREADABLE_SNAPSHOT}, 503)
    name = reader.target.rsplit("/", 1)[-1] if reader.target else None
    return {"status": "ready", "snapshot": name, "published_at": published_at}


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}},
        401: {"model": ErrorBody},
        403: {"model": ErrorBody},
    },
    dependencies=[Depends(metrics_scraper)],
)
def metrics(registry: Registry) -> PlainTextResponse:
    """Prometheus text format; store figures are read from the snapshot at scrape time.

    With API keys configured, needs a key with the `metrics` scope (X-API-Key or Bearer).
    """
    return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
