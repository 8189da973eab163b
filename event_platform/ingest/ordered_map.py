"""Map a function over an iterator on worker threads, yielding results in input order.

Validation of one chunk (polars kernels, DuckDB in memory) releases the GIL for nearly all of its
time, so two chunks validated on two threads use both cores, where one thread left the second
core to the writer alone. Results come back in input order because the store numbers lines and
decides duplicates in file order. At most `workers + 1` items are in flight beyond the one the
consumer holds, so memory stays bounded by a few chunks whatever the file size.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(
    fn: Callable[[T], R], items: Iterable[T], *, workers: int, name: str = "ordered-map"
) -> Iterator[R]:
    """`map(fn, items)` computed up to `workers` at a time; the first error is raised in order.

    A consumer that stops early (or an error) cancels what has not started and waits for what
    has, so no worker outlives the iteration.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    pending: deque[Future[R]] = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix=name) as pool:
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) > workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
