"""API settings from the environment, and the rule that an unauthenticated server stays local.

`EVENT_PLATFORM_API_KEYS` is a comma-separated list of `key[:scope[:scope...]]`, e.g.
`s3cret:pii,readonly-key,scraper-key:metrics`. Without any key the API serves without
authentication, which is only safe on loopback, so `check_bind` refuses any other host instead
of silently exposing data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from event_platform.settings import Settings

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
# `pii`: unmasked personal data; `metrics`: may scrape /metrics (alone: nothing else).
KNOWN_SCOPES = frozenset({"pii", "metrics"})


class ApiConfigError(ValueError):
    """The API settings cannot be served safely or are malformed."""


def parse_api_keys(text: str) -> dict[str, frozenset[str]]:
    """`k1:pii,k2` -> {"k1": {"pii"}, "k2": {}}; unknown scopes fail loudly rather than grant."""
    keys: dict[str, frozenset[str]] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, *scopes = item.split(":")
        key = key.strip()
        if not key:
            raise ApiConfigError("EVENT_PLATFORM_API_KEYS has an entry with an empty key")
        wanted = frozenset(scope.strip() for scope in scopes if scope.strip())
        unknown = wanted - KNOWN_SCOPES
        if unknown:
            raise ApiConfigError(
                f"unknown API key scope(s) {sorted(unknown)}; known: {sorted(KNOWN_SCOPES)}"
            )
        keys[key] = wanted
    return keys


@dataclass(frozen=True)
class ApiSettings:
    """Where the API reads from, who may call it and where it listens."""

    snapshot_path: Path
    api_keys: dict[str, frozenset[str]] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 8080
    # Worker processes: a page is mostly DuckDB time, which releases the GIL, but the Python
    # around it does not; one process per core served the 10M-row benchmark best.
    workers: int = 2
    # Only for /metrics: pending files in landing and the warehouse's size (stat, never opened).
    landing_dir: Path | None = None
    warehouse_path: Path | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ApiSettings:
        env = os.environ if environ is None else environ
        settings = Settings.from_env(dict(env))
        snapshot = env.get("EVENT_PLATFORM_API_SNAPSHOT") or str(
            settings.published_dir / "current.duckdb"
        )
        port_text = env.get("EVENT_PLATFORM_API_PORT", "8080")
        try:
            port = int(port_text)
        except ValueError as exc:
            raise ApiConfigError(f"EVENT_PLATFORM_API_PORT is not a port: {port_text!r}") from exc
        workers_text = env.get("EVENT_PLATFORM_API_WORKERS", "2")
        try:
            workers = int(workers_text)
        except ValueError:
            workers = 0
        if workers < 1:
            raise ApiConfigError(
                f"EVENT_PLATFORM_API_WORKERS must be a whole number >= 1: {workers_text!r}"
            )
        return cls(
            snapshot_path=Path(snapshot).expanduser(),
            api_keys=parse_api_keys(env.get("EVENT_PLATFORM_API_KEYS", "")),
            host=env.get("EVENT_PLATFORM_API_HOST", "127.0.0.1"),
            port=port,
            workers=workers,
            landing_dir=settings.landing_dir,
            warehouse_path=settings.duckdb_path,
        )

    def check_bind(self) -> None:
        """Refuse a non-loopback bind without keys: anyone on the network could read the data."""
        if not 0 < self.port < 65536:
            raise ApiConfigError(f"port {self.port} is out of range 1..65535")
        if not self.api_keys and self.host not in LOOPBACK_HOSTS:
            raise ApiConfigError(
                f"refusing to listen on {self.host!r} without API keys; set "
                "EVENT_PLATFORM_API_KEYS (e.g. 'key1:pii,key2') or bind 127.0.0.1"
            )
