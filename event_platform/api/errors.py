"""Every error leaves as JSON `{"error": code, "detail": ...}`.

`Guard` is the outermost middleware: an unexpected exception becomes a bare 500 logged by type,
route template and frames only, so neither clients nor logs see internals or personal data (an
exception message may quote a parameter, such as an email). uvicorn's access log is off for the
same reason (query strings may hold an email); `Guard` records the route template instead.
"""

import logging
import time
import traceback
from typing import Any

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import Histogram
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from event_platform.api.models import ErrorBody
from event_platform.api.snapshot import SnapshotUnavailableError

logger = logging.getLogger("event_platform.api")

# The error responses a data route documents.
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 422, 500, 503)
}


class ApiError(Exception):
    """An error with a status, a stable code and a client-safe detail."""

    def __init__(self, status: int, error: str, detail: Any = None) -> None:
        super().__init__(error)
        self.status, self.error, self.detail = status, error, detail


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": "ApiKey, Bearer"} if exc.status == 401 else None
    return JSONResponse({"error": exc.error, "detail": exc.detail}, exc.status, headers)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse({"error": code, "detail": exc.detail}, exc.status_code)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    detail = [
        {"loc": list(error.get("loc", ())), "msg": error.get("msg"), "type": error.get("type")}
        for error in exc.errors()
    ]
    return JSONResponse({"error": "validation_error", "detail": jsonable_encoder(detail)}, 422)


async def _no_snapshot(request: Request, exc: SnapshotUnavailableError) -> JSONResponse:
    return JSONResponse({"error": "snapshot_unavailable", "detail": exc.detail}, 503)


def register_error_handlers(app: FastAPI) -> None:
    """Give FastAPI's own errors (404, 405, 422) and ours the one JSON error shape."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(SnapshotUnavailableError, _no_snapshot)


class Guard:
    """Outermost middleware: request latency per route template, and a JSON 500 on any crash."""

    def __init__(self, app: ASGIApp, latency: Histogram) -> None:
        self.app = app
        self.latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500, "sent": False}

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["sent"] = message["status"], True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            route = getattr(scope.get("route"), "path", "unmatched")
            # Type and frames only: an exception message may quote a parameter (an email).
            logger.error(
                "unhandled %s on %s %s\n%s",
                type(exc).__name__,
                scope["method"],
                route,
                "".join(traceback.format_tb(exc.__traceback__)),
            )
            if not status["sent"]:
                response = JSONResponse({"error": "internal_error", "detail": None}, 500)
                await response(scope, receive, send)
            status["code"] = 500
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            elapsed = time.perf_counter() - started
            self.latency.labels(scope["method"], route, str(status["code"])).observe(elapsed)
            logger.info("%s %s %s %.1fms", scope["method"], route, status["code"], elapsed * 1e3)
