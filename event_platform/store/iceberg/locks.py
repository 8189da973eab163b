"""PostgreSQL advisory locks that serialise decide-and-commit per processing date.

Two workers storing the same event from two files at once would each find no duplicate in
the committed index and both store it. Holding the lock of every date a file's events carry
(and of the file itself) from reading the index until the file's index entries are committed
makes the later worker see the earlier one's events: exactly one file keeps the event and the
other line becomes a `duplicate_event`, decided by commit order. Locks are taken in one global
order (sorted keys), so two workers never wait for each other in a cycle; they are session
locks, so a killed worker's connection ends and PostgreSQL releases them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date


def lock_key(kind: str, value: object) -> int:
    """A signed 64-bit key for `pg_advisory_lock`, stable across processes and releases."""
    digest = hashlib.blake2b(f"event_platform:{kind}:{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def date_keys(dates: Iterable[date | None]) -> set[int]:
    return {lock_key("processing_date", day.isoformat() if day else "null") for day in dates}


def libpq_dsn(catalog_uri: str) -> str:
    """The catalog's SQLAlchemy URI (`postgresql+psycopg2://...`) as a libpq URI."""
    from sqlalchemy.engine import make_url

    url = make_url(catalog_uri)
    if url.get_backend_name() != "postgresql":
        raise ValueError(f"advisory locks need a PostgreSQL catalog, not {url.drivername}")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class AdvisoryLocks:
    """Session-level advisory locks on one connection of their own; release with `close`."""

    def __init__(self, catalog_uri: str) -> None:
        import psycopg2

        self._con = psycopg2.connect(libpq_dsn(catalog_uri))
        self._con.autocommit = True
        self.held: list[int] = []

    def acquire(self, keys: Iterable[int]) -> None:
        with self._con.cursor() as cursor:
            for key in sorted(set(keys) - set(self.held)):
                cursor.execute("SELECT pg_advisory_lock(%s)", (key,))
                self.held.append(key)

    def close(self) -> None:
        # Closing the session releases every lock it holds.
        self._con.close()
        self.held = []
