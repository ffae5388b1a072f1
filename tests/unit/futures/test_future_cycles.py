"""A settled future keeps no reference cycle: its result is freed as soon as the last reference
to the future goes, without the cyclic garbage collector.

Forward/backward outputs are megabytes of arrays; held in a cycle (future <-> executor future,
mirror's and combine's pairs) they lived until a full collection, which then walked the heap
once per training step (issue 13).
"""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from tinkex._futures import APIFuture, mirror


class Payload:
    """A result whose lifetime the tests watch through a weak reference."""


@pytest.fixture
def without_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_run_frees_its_result_with_the_future(without_gc: None) -> None:
    started = threading.Event()

    def work() -> Payload:  # still running when run() links the two futures
        started.wait(10)
        return Payload()

    pool = ThreadPoolExecutor(max_workers=1)
    future = APIFuture.run(pool, work)
    started.set()
    result = weakref.ref(future.result(timeout=10))
    pool.shutdown(wait=True)  # the worker has dropped its work item
    del future
    assert result() is None


def test_cancelled_run_frees_the_future(without_gc: None) -> None:
    pool = ThreadPoolExecutor(max_workers=1)
    future = APIFuture.run(pool, Payload)
    future.result(timeout=10)
    blocked: Future[None] = Future()
    pending = APIFuture.run(pool, blocked.result)
    queued = APIFuture.run(pool, Payload)
    assert queued.cancel()
    gone = weakref.ref(queued)
    blocked.set_result(None)
    pending.result(timeout=10)
    pool.shutdown(wait=True)
    del queued
    assert gone() is None


def test_mirror_frees_its_result_with_both_futures(without_gc: None) -> None:
    source: Future[Payload] = Future()
    target: APIFuture[Payload] = APIFuture()
    mirror(source, target)
    source.set_result(Payload())
    result = weakref.ref(target.result(timeout=0))
    del source, target
    assert result() is None


def test_combine_frees_its_result_with_the_futures(without_gc: None) -> None:
    inputs: list[Future[int]] = [APIFuture(), Future()]
    combined = APIFuture.combine(inputs, lambda values: Payload())
    for i, item in enumerate(inputs):
        item.set_result(i)
    result = weakref.ref(combined.result(timeout=0))
    del inputs, item, combined
    assert result() is None


def test_callbacks_added_after_completion_still_run() -> None:
    future: APIFuture[int] = APIFuture()
    seen: list[int] = []
    future.add_done_callback(lambda f: seen.append(f.result()))
    future.set_result(7)
    future.add_done_callback(lambda f: seen.append(f.result() + 1))
    assert seen == [7, 8]
