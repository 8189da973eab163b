"""ordered_map: results in input order, errors in order, bounded look-ahead, clean early stop."""

from __future__ import annotations

import random
import threading
import time

import pytest

from event_platform.ingest.ordered_map import ordered_map


def test_results_keep_input_order_whatever_finishes_first():
    delays = random.Random(3).choices([0.0, 0.001, 0.005], k=200)

    def slow_square(index: int) -> int:
        time.sleep(delays[index])
        return index * index

    assert list(ordered_map(slow_square, range(200), workers=3)) == [i * i for i in range(200)]


def test_work_runs_on_several_threads_at_once():
    running, peak, lock = 0, 0, threading.Lock()

    def track(_: int) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1

    list(ordered_map(track, range(12), workers=2))
    assert peak == 2


def test_reads_at_most_workers_plus_one_items_ahead_of_the_consumer():
    pulled = 0

    def source():
        nonlocal pulled
        for item in range(100):
            pulled += 1
            yield item

    results = ordered_map(lambda item: item, source(), workers=2)
    assert next(results) == 0
    time.sleep(0.05)
    assert pulled == 3  # the one handed over, and two computed ahead
    results.close()


def test_the_first_error_in_input_order_is_raised_after_the_results_before_it():
    def fail_on_odd_from_five(item: int) -> int:
        if item >= 5 and item % 2:
            raise ValueError(f"bad {item}")
        return item

    seen = []
    with pytest.raises(ValueError, match="bad 5"):
        for result in ordered_map(fail_on_odd_from_five, range(20), workers=2):
            seen.append(result)
    assert seen == [0, 1, 2, 3, 4]


def test_stopping_early_leaves_no_worker_running():
    started = []

    def work(item: int) -> int:
        started.append(item)
        time.sleep(0.01)
        return item

    results = ordered_map(work, range(1000), workers=2, name="early-stop")
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    results.close()
    assert len(started) < 10
    assert not [t for t in threading.enumerate() if t.name.startswith("early-stop")]


def test_rejects_zero_workers():
    with pytest.raises(ValueError, match="at least 1"):
        list(ordered_map(str, [1], workers=0))
