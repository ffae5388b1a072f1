"""APIFuture's lean condition variable: every way of waiting on a future still works, and a
future costs a third of a plain ``concurrent.futures.Future``."""

from __future__ import annotations

import concurrent.futures
import gc
import threading
import time
import tracemalloc

import pytest

from tinkex._future_condition import FutureCondition
from tinkex._futures import APIFuture


def _later(seconds: float, action: object) -> threading.Thread:
    def run() -> None:
        time.sleep(seconds)
        action()  # type: ignore[operator]

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_result_times_out_leaving_no_waiter_then_wakes_on_the_result() -> None:
    future: APIFuture[int] = APIFuture()
    with pytest.raises(TimeoutError):
        future.result(timeout=0.05)
    assert not future._condition._waiters  # type: ignore[attr-defined]
    thread = _later(0.05, lambda: future.set_result(7))
    assert future.result(timeout=10) == 7
    thread.join()


def test_every_blocked_thread_wakes_on_the_result() -> None:
    future: APIFuture[str] = APIFuture()
    results: list[str] = []
    waiting = [threading.Thread(target=lambda: results.append(future.result(10))) for _ in range(8)]
    for thread in waiting:
        thread.start()
    deadline = time.monotonic() + 10
    while len(future._condition._waiters or ()) < 8 and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.01)
    future.set_result("done")
    for thread in waiting:
        thread.join(10)
    assert results == ["done"] * 8


def test_concurrent_futures_wait_and_as_completed_see_results_and_cancellations() -> None:
    futures: list[APIFuture[int]] = [APIFuture() for _ in range(3)]
    setter = _later(0.05, lambda: futures[1].set_result(1))
    done, pending = concurrent.futures.wait(
        futures, timeout=10, return_when=concurrent.futures.FIRST_COMPLETED
    )
    assert done == {futures[1]} and len(pending) == 2
    setter.join()
    canceller = _later(0.05, futures[0].cancel)
    done, _ = concurrent.futures.wait(
        [futures[0], futures[2]], timeout=10, return_when=concurrent.futures.FIRST_COMPLETED
    )
    assert done == {futures[0]} and futures[0].cancelled()
    canceller.join()
    futures[2].set_exception(ValueError("no"))
    assert set(concurrent.futures.as_completed(futures, timeout=10)) == set(futures)


def test_wait_releases_every_level_of_the_reentrant_lock() -> None:
    condition = FutureCondition()
    with condition, condition:  # held twice, as Future's RLock may be
        _later(0.05, lambda: _notify_all(condition))
        assert condition.wait(timeout=10) is True
        assert condition.wait(timeout=0) is False  # nobody notifies: an immediate False


def _notify_all(condition: FutureCondition) -> None:
    with condition:
        condition.notify_all()


def test_waiting_or_notifying_without_the_lock_is_refused() -> None:
    condition = FutureCondition()
    with pytest.raises(RuntimeError, match="un-acquired"):
        condition.wait(0)
    with pytest.raises(RuntimeError, match="un-acquired"):
        condition.notify()


def test_notify_wakes_only_as_many_as_asked() -> None:
    condition = FutureCondition()
    woken: list[bool] = []

    def wait() -> None:
        with condition:
            woken.append(condition.wait(timeout=1.0))

    threads = [threading.Thread(target=wait) for _ in range(3)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while len(condition._waiters or ()) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    with condition:
        condition.notify(2)
    for thread in threads:
        thread.join(10)
    assert sorted(woken) == [False, True, True]


def test_a_future_costs_a_third_of_a_plain_one() -> None:
    def bytes_each(make: type) -> float:
        gc.collect()
        tracemalloc.start()
        try:
            kept = [make() for _ in range(1000)]
            size = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        del kept
        return size / 1000

    plain, ours = bytes_each(concurrent.futures.Future), bytes_each(APIFuture)
    assert ours < plain / 2.5, (ours, plain)
