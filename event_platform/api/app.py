"""The HTTP data API: FastAPI over the published DuckDB snapshot, read-only.

Design choices, and why:
- Only snapshots are read (see `event_platform.store.publication`), so serving never blocks
  ingestion and ingestion never makes the API fail.
- Every error is JSON `{"error": code, "detail": ...}`; an unexpected exception is caught by
  `_Guard` (the outermost app middleware) and becomes a bare 500 logged by type and route only,
  so neither clients nor logs see internals or personal data. uvicorn's access log is off for the
  same reason (query strings may hold an email); `_Guard` records the route template instead.
- Every SQL statement is parametrised; only fixed fragments are concatenated.
- No `from __future__ import annotations` here: FastAPI must evaluate the local `Caller`
  dependency annotation inside `create_app`.
- Emails and phone numbers are masked unless the API key has the `pii` scope, and filtering by
  email needs `pii` too (else the filter would tell who is in the data). Rejection reasons are
  shown by `contract.reasons.disclosed_reason` without `pii`: details may be the sender's keys.
- A key is sent as `X-API-Key` or as `Authorization: Bearer` (what Prometheus can send). A key
  whose only scope is `metrics` may scrape `/metrics` and nothing else, so the credential on
  the Prometheus server cannot read events.
"""

import base64
import hmac
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Security
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from event_platform.api.cursor import BadCursorError, decode_cursor, encode_cursor
from event_platform.api.metrics import build_registry
from event_platform.api.pages import EVENT_COLUMNS, EVENT_FIELDS, After, TimeExtent, fetch_page
from event_platform.api.privacy import mask_email, mask_phone
from event_platform.api.snapshot import (
    NO_SNAPSHOT,
    UNREADABLE_SNAPSHOT,
    SnapshotReader,
    SnapshotUnavailableError,
)
from event_platform.contract.reasons import disclosed_reasons
from event_platform.settings import ApiSettings, Settings

logger = logging.getLogger("event_platform.api")

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


class ApiError(Exception):
    """An error with a status, a stable code and a client-safe detail."""

    def __init__(self, status: int, error: str, detail: Any = None) -> None:
        super().__init__(error)
        self.status, self.error, self.detail = status, error, detail


class ErrorBody(BaseModel):
    error: str
    detail: Any = None


class Event(BaseModel):
    event_hash: str
    event_type: int
    event_time: datetime
    processing_date: date | None
    user_email: str | None
    phone_number: str | None
    source_file: str
    line_number: int
    ingested_at: datetime | None


class EventPage(BaseModel):
    items: list[Event]
    next_cursor: str | None
    limit: int


class DailyStat(BaseModel):
    day: date | None
    event_type: int | None
    events: int


class DailyStats(BaseModel):
    days: list[DailyStat]


class Reconciliation(BaseModel):
    source_file: str
    file_sha256: str | None
    lines_total: int | None
    valid: int | None
    rejected: int | None
    duplicates: int | None
    stored_rows: int | None
    missing_rows: int | None
    unexpected_rows: int | None
    mismatched_rows: int | None
    passed: bool | None
    checked_at: datetime | None
    run_id: str | None
    served: bool


class ReconciliationList(BaseModel):
    files: list[Reconciliation]


class ReasonCount(BaseModel):
    reason: str
    lines: int


class RejectedLine(BaseModel):
    line_number: int
    reasons: list[str]
    rejected_at: datetime | None
    raw_line: str | None = Field(
        description="The line's bytes as text when they are UTF-8, else null; pii scope only"
    )
    raw_line_base64: str | None = Field(
        description="The line's exact bytes (up to its newline), base64; pii scope only"
    )
    raw_line_redacted: bool


class Rejections(BaseModel):
    source_file: str | None
    reasons: list[ReasonCount]
    lines: list[RejectedLine] | None = None
    next_after_line: int | None = None


class Status(BaseModel):
    status: str
    snapshot: str | None = None
    published_at: datetime | None = None
    detail: str | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 422, 500, 503)
}
METRICS_ONLY = frozenset({"metrics"})


@dataclass(frozen=True)
class Principal:
    """Who is calling: the scopes of the matched key (none when keys are not configured)."""

    scopes: frozenset[str]

    @property
    def pii(self) -> bool:
        return "pii" in self.scopes


def _raw_line(raw: bytes | None) -> dict[str, str | None]:
    """A rejected line's exact bytes, unambiguously: base64 always, text only when it is UTF-8."""
    if raw is None:
        return {"raw_line": None, "raw_line_base64": None}
    try:
        text: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return {"raw_line": text, "raw_line_base64": base64.b64encode(raw).decode("ascii")}


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def _event(row: tuple, pii: bool) -> dict[str, Any]:
    item = dict(zip(EVENT_FIELDS, row, strict=True))
    if not pii:
        item["user_email"] = mask_email(item["user_email"])
        item["phone_number"] = mask_phone(item["phone_number"])
    return item


class _Guard:
    """Outermost middleware: request latency per route template, and a JSON 500 on any crash."""

    def __init__(self, app: ASGIApp, latency) -> None:
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
    keys = [(key.encode(), scopes) for key, scopes in settings.api_keys.items()]
    api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
    bearer = HTTPBearer(auto_error=False)

    def authenticated(
        key: Annotated[str | None, Security(api_key_header)] = None,
        token: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None,
    ) -> Principal | None:
        """The caller's scopes; None when no keys are configured (loopback only, all open)."""
        if not keys:
            return None
        given_text = key or (token.credentials if token is not None else None)
        if not given_text:
            raise ApiError(
                401, "unauthorized", "missing key: send X-API-Key or Authorization: Bearer"
            )
        given = given_text.encode()
        matched: frozenset[str] | None = None
        for candidate, scopes in keys:  # compare against every key: no early exit to time
            if hmac.compare_digest(given, candidate):
                matched = scopes
        if matched is None:
            raise ApiError(401, "unauthorized", "invalid API key")
        return Principal(matched)

    def data_reader(
        principal: Annotated[Principal | None, Depends(authenticated)],
    ) -> Principal:
        if principal is None:
            return Principal(frozenset())
        if principal.scopes == METRICS_ONLY:
            raise ApiError(403, "forbidden", "this key has only the metrics scope")
        return principal

    def metrics_scraper(
        principal: Annotated[Principal | None, Depends(authenticated)],
    ) -> None:
        if principal is not None and "metrics" not in principal.scopes:
            raise ApiError(403, "forbidden", "scraping /metrics needs a key with the metrics scope")

    Caller = Annotated[Principal, Depends(data_reader)]

    app = FastAPI(
        title="event_platform data API",
        version="1.0.0",
        description="Read-only access to reconciled events, served from published snapshots.",
    )
    app.add_middleware(_Guard, latency=latency)
    app.state.reader = reader

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "ApiKey, Bearer"} if exc.status == 401 else None
        return JSONResponse({"error": exc.error, "detail": exc.detail}, exc.status, headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse({"error": code, "detail": exc.detail}, exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [
            {"loc": list(error.get("loc", ())), "msg": error.get("msg"), "type": error.get("type")}
            for error in exc.errors()
        ]
        return JSONResponse({"error": "validation_error", "detail": jsonable_encoder(detail)}, 422)

    @app.exception_handler(SnapshotUnavailableError)
    async def _no_snapshot(request: Request, exc: SnapshotUnavailableError) -> JSONResponse:
        return JSONResponse({"error": "snapshot_unavailable", "detail": exc.detail}, 503)

    @app.get("/events", response_model=EventPage, responses=ERRORS, tags=["events"])
    def list_events(
        caller: Caller,
        event_type: Annotated[int | None, Query(ge=0, le=INT32_MAX)] = None,
        event_time_from: Annotated[
            datetime | None, Query(description="inclusive; naive times are UTC")
        ] = None,
        event_time_to: Annotated[datetime | None, Query(description="exclusive")] = None,
        processing_date: date | None = None,
        user_email: Annotated[
            str | None, Query(min_length=1, max_length=320, description="needs the pii scope")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[str | None, Query(max_length=512)] = None,
    ) -> JSONResponse:
        """Events in (event_time, event_hash) order, `limit` per page, resumed by `cursor`."""
        where: list[str] = []
        params: list[Any] = []
        if event_type is not None:
            where.append("event_type = ?")
            params.append(event_type)
        start, end = _naive_utc(event_time_from), _naive_utc(event_time_to)
        if start is not None and end is not None and start > end:
            raise ApiError(400, "bad_filter", "event_time_from is after event_time_to")
        if processing_date is not None:
            where.append("processing_date = ?")
            params.append(processing_date)
        if user_email is not None:
            if not caller.pii:
                raise ApiError(403, "forbidden", "filtering by user_email needs the pii scope")
            where.append("user_email = ?")
            params.append(user_email)
        after = None
        if cursor is not None:
            try:
                after = After(*decode_cursor(cursor))
            except BadCursorError as exc:
                raise ApiError(400, "bad_cursor", str(exc)) from None
        with reader.session() as (cur, extent):
            if extent is None:  # the reader could not read it: surface the real error (500)
                extent = TimeExtent.read(cur)
            rows = fetch_page(
                cur,
                extent,
                where=where,
                params=params,
                time_from=start,
                time_to=end,
                after=after,
                limit=limit,
                windowed=processing_date is None and user_email is None,
            )
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_cursor = encode_cursor(datetime.fromisoformat(rows[-1][2]), rows[-1][0])
        # Already JSON-ready (ISO strings from SQL): returned as is, without a second pass of
        # model validation; `EventPage` still documents the shape and the contract tests check it.
        return JSONResponse(
            {
                "items": [_event(row, caller.pii) for row in rows],
                "next_cursor": next_cursor,
                "limit": limit,
            }
        )

    @app.get("/events/{event_hash}", response_model=Event, responses=ERRORS, tags=["events"])
    def get_event(
        caller: Caller, event_hash: Annotated[str, Path(min_length=1, max_length=128)]
    ) -> JSONResponse:
        """One event by its hash, if its file is published."""
        with reader.cursor() as cur:
            # Both tables are sorted by what is looked up, so a constant filter lets zone maps
            # skip to one row group in each: the hash's time first, then the event.
            found = cur.execute(
                "SELECT min(event_time) FROM event_times_by_hash WHERE event_hash = ?",
                [event_hash],
            ).fetchone()
            row = None
            if found[0] is not None:
                row = cur.execute(
                    f"SELECT {EVENT_COLUMNS} FROM events WHERE event_time = ? AND event_hash = ?",
                    [found[0], event_hash],
                ).fetchone()
        if row is None:
            raise ApiError(404, "not_found", "no published event has this hash")
        return JSONResponse(_event(row, caller.pii))

    @app.get("/stats/daily", response_model=DailyStats, responses=ERRORS, tags=["stats"])
    def daily_stats(
        caller: Caller,
        date_from: date | None = None,
        date_to: Annotated[date | None, Query(description="inclusive")] = None,
        event_type: Annotated[int | None, Query(ge=0, le=INT32_MAX)] = None,
    ) -> dict[str, Any]:
        """Published events per processing date and event type (precomputed at publication)."""
        where, params = [], []
        if date_from is not None:
            where.append("day >= ?")
            params.append(date_from)
        if date_to is not None:
            where.append("day <= ?")
            params.append(date_to)
        if event_type is not None:
            where.append("event_type = ?")
            params.append(event_type)
        sql = (
            f"SELECT day, event_type, events FROM daily_stats WHERE {' AND '.join(where) or 'TRUE'}"
            " ORDER BY day, event_type"
        )
        with reader.cursor() as cur:
            rows = cur.execute(sql, params).fetchall()
        return {"days": [{"day": d, "event_type": t, "events": n} for d, t, n in rows]}

    @app.get(
        "/reconciliation", response_model=ReconciliationList, responses=ERRORS, tags=["quality"]
    )
    def reconciliation(caller: Caller) -> dict[str, Any]:
        """The latest reconciliation report of every file; `served` says if its events are."""
        with reader.cursor() as cur:
            result = cur.execute(
                """SELECT r.*, p.source_file IS NOT NULL AS served
                   FROM reconciliation_reports r
                   LEFT JOIN published_files p USING (source_file)
                   QUALIFY row_number() OVER (
                       PARTITION BY r.source_file ORDER BY r.checked_at DESC) = 1
                   ORDER BY r.source_file"""
            )
            names = [column[0] for column in result.description]
            rows = result.fetchall()
        return {"files": [dict(zip(names, row, strict=True)) for row in rows]}

    @app.get("/rejections", response_model=Rejections, responses=ERRORS, tags=["quality"])
    def rejections(
        caller: Caller,
        source_file: Annotated[str | None, Query(min_length=1, max_length=1024)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        after_line: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
    ) -> dict[str, Any]:
        """Rejection counts per reason; with `source_file`, that file's rejected lines too.

        Raw lines carry personal data, so they are returned only to keys with the pii scope.
        Without it, reasons are shown by `contract.reasons.disclosed_reason` (a detail that is
        not one of the contract's field paths is masked) and counted from the matching snapshot
        table.
        """
        # A fixed choice between two table names, never input.
        table = "rejection_reasons" if caller.pii else "rejection_reasons_masked"
        with reader.cursor() as cur:
            if source_file is None:
                reasons = cur.execute(
                    f"SELECT reason, sum(lines)::BIGINT FROM {table} "
                    "GROUP BY reason ORDER BY reason"
                ).fetchall()
                return {
                    "source_file": None,
                    "reasons": [{"reason": r, "lines": n} for r, n in reasons],
                }
            known = (
                cur.execute(
                    "SELECT count(*) FROM reconciliation_reports WHERE source_file = ?",
                    [source_file],
                ).fetchone()[0]
                or cur.execute(
                    "SELECT count(*) FROM rejected_events WHERE source_file = ?", [source_file]
                ).fetchone()[0]
            )
            if not known:
                raise ApiError(404, "not_found", "unknown source_file")
            reasons = cur.execute(
                f"SELECT reason, lines FROM {table} WHERE source_file = ? ORDER BY reason",
                [source_file],
            ).fetchall()
            lines = cur.execute(
                "SELECT line_number, reasons, rejected_at, raw_line FROM rejected_events "
                "WHERE source_file = ? AND line_number > ? ORDER BY line_number LIMIT ?",
                [source_file, after_line, limit + 1],
            ).fetchall()
        next_after = None
        if len(lines) > limit:
            lines = lines[:limit]
            next_after = lines[-1][0]
        return {
            "source_file": source_file,
            "reasons": [{"reason": r, "lines": n} for r, n in reasons],
            "lines": [
                {
                    "line_number": number,
                    "reasons": list(why or []) if caller.pii else disclosed_reasons(why or []),
                    "rejected_at": at,
                    **_raw_line(raw if caller.pii else None),
                    "raw_line_redacted": not caller.pii,
                }
                for number, why, at, raw in lines
            ],
            "next_after_line": next_after,
        }

    @app.get("/health", response_model=Status, tags=["ops"])
    def health() -> dict[str, Any]:
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

    @app.get("/ready", response_model=Status, responses={503: {"model": ErrorBody}}, tags=["ops"])
    def ready() -> Any:
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

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        responses={
            200: {"content": {CONTENT_TYPE_LATEST: {}}},
            401: {"model": ErrorBody},
            403: {"model": ErrorBody},
        },
        tags=["ops"],
        dependencies=[Depends(metrics_scraper)],
    )
    def metrics() -> PlainTextResponse:
        """Prometheus text format; store figures are read from the snapshot at scrape time.

        With API keys configured, needs a key with the `metrics` scope (X-API-Key or Bearer).
        """
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def app_from_env() -> FastAPI:
    """For `uvicorn --factory event_platform.api.app:app_from_env`: the entry point that reads
    the environment, once, when the API is served without `event-platform serve`."""
    return create_app(Settings.from_env().api)
