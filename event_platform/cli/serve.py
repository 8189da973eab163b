"""`event-platform serve` (the HTTP data API) and `event-platform publish-snapshot`.

The server reads only published snapshots, so it can run next to ingestion without either
blocking the other; `publish-snapshot` refreshes what it serves (the `published_events` asset
does the same inside Dagster).
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from event_platform.settings import ApiSettings, Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser(
        "serve", help="serve the HTTP data API and /metrics over the published snapshot"
    )
    serve.add_argument("--host", help="bind address (default EVENT_PLATFORM_API_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default EVENT_PLATFORM_API_PORT or 8080)")
    serve.add_argument(
        "--workers", type=int, help="worker processes (default EVENT_PLATFORM_API_WORKERS or 2)"
    )
    serve.set_defaults(func=run_serve)

    publish = subparsers.add_parser(
        "publish-snapshot", help="publish reconciled data to a new snapshot the API serves"
    )
    publish.add_argument("--json", action="store_true", help="print the result as JSON")
    publish.set_defaults(func=run_publish)


def run_serve(args: argparse.Namespace, tree: Settings) -> int:
    from dataclasses import replace

    from event_platform.cli.main import UsageError
    from event_platform.settings import SettingsError

    settings = replace(
        tree.api,
        host=args.host if args.host is not None else tree.api.host,
        port=args.port if args.port is not None else tree.api.port,
        workers=args.workers if args.workers is not None else tree.api.workers,
    )
    try:
        import uvicorn

        from event_platform.api import create_app

        app = create_app(settings)  # validates the bind before anything listens
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    # access_log off: query strings may carry an email; the app logs route templates instead.
    if settings.workers == 1:
        uvicorn.run(app, host=settings.host, port=settings.port, access_log=False, log_level="info")
        return 0
    _serve_with_workers(settings)
    return 0


def _serve_with_workers(settings: ApiSettings) -> None:
    """Several worker processes behind one socket, with one set of request metrics.

    Each worker is a spawned process that builds its own app: the settings travel to it inside
    uvicorn's pickled config, as the factory's argument, so nothing is written to the
    environment and no worker reads it again. Request histograms are shared through
    prometheus_client's multiprocess files: any worker answering a scrape reports them all.
    """
    import os
    import tempfile
    from functools import partial

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from event_platform.api.app import create_app

    with tempfile.TemporaryDirectory(prefix="event-platform-metrics-") as metrics_dir:
        # prometheus_client reads its multiprocess folder from this variable only, in every
        # worker; it is the one setting that has to travel through the environment.
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", metrics_dir)
        config = uvicorn.Config(
            # `uvicorn.run` wants an import string for workers; the supervisor it would start
            # accepts any picklable factory, and this one carries the settings.
            partial(create_app, settings),
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            access_log=False,
            log_level="info",
        )
        Multiprocess(config, sockets=[config.bind_socket()]).run()


def run_publish(args: argparse.Namespace, settings: Settings) -> int:
    from event_platform.store.publication import publish_snapshot

    result = publish_snapshot(
        settings.duckdb_path, settings.published_dir, memory_limit=settings.duckdb_memory_limit
    )
    summary = {
        "snapshot": str(result.snapshot),
        "events": result.events,
        "rejected": result.rejected,
        "files_published": result.files_published,
        "files_failed": result.files_failed,
        "seconds": round(result.seconds, 3),
        "removed": [str(path) for path in result.removed],
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"published {result.snapshot.name}: {result.events:,} events from "
            f"{result.files_published} files ({result.files_failed} failed reconciliation, "
            f"not served) in {result.seconds:.2f}s"
        )
    return 0
