"""APIFuture and DaemonThreadPoolExecutor."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from tinkex._executor import DaemonThreadPoolExecutor
from tinkex._futures import APIFuture, current_future


@pytest.fixture
def executor() -> Iterator[DaemonThreadPoolExecutor]:
    pool = DaemonThreadPoolExecutor(max_workers=4, thread_name_prefix="test-pool")
    yield pool
    pool.shutdown(wait=True, cancel_futures=True)


def test_run_returns_result_and_is_a_concurrent_future(executor: DaemonThreadPoolExecutor) -> None:
    fut = APIFuture.run(executor, lambda a, b: a + b, 2, 3)
    assert isinstance(fut, cf.Future)
    assert fut.result(timeout=5) == 5
    assert fut.future() is fut
    assert fut.done() and not fut.cancelled()


def test_generic_subscription_works_at_runtime() -> None:
    alias = APIFuture[int]
    assert alias.__origin__ is APIFuture  # type: ignore[attr-defined]


def test_exceptions_propagate(executor: DaemonThreadPoolExecutor) -> None:
    def boom() -> None:
        raise KeyError("missing")

    fut = APIFuture.run(executor, boom)
    with pytest.raises(KeyError, match="missing"):
        fut.result(timeout=5)
    assert isinstance(fut.exception(), KeyError)


def test_result_timeout_raises_builtin_timeout_error(executor: DaemonThreadPoolExecutor) -> None:
    release = threading.Event()
    fut = APIFuture.run(executor, release.wait, 5)
    with pytest.raises(TimeoutError, match=r"not ready after 0\.01 s"):
        fut.result(timeout=0.01)
    assert not fut.done()  # a result() timeout does not cancel
    release.set()
    assert fut.result(timeout=5) is True


def test_cancel_before_start_prevents_running() -> None:
    pool = DaemonThreadPoolExecutor(max_workers=1)
    gate = threading.Event()
    ran: list[str] = []
    blocker = APIFuture.run(pool, gate.wait, 5)
    fut = APIFuture.run(pool, ran.append, "ran")
    assert fut.cancel()
    assert fut.cancelled()
    with pytest.raises(cf.CancelledError):
        fut.result()
    gate.set()
    blocker.result(timeout=5)
    pool.shutdown(wait=True)
    assert ran == []


def test_cancel_while_running_is_visible_to_the_work(executor: DaemonThreadPoolExecutor) -> None:
    started = threading.Event()
    saw_cancel = threading.Event()

    def work() -> str:
        me = current_future()
        assert me is not None
        started.set()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if me.cancelled():
                saw_cancel.set()
                return "late"
            time.sleep(0.001)
        return "never cancelled"

    fut = APIFuture.run(executor, work)
    assert started.wait(5)
    assert fut.cancel()
    assert fut.cancelled()
    assert saw_cancel.wait(5)
    with pytest.raises(cf.CancelledError):
        fut.result()
    assert not fut.cancel() or fut.cancelled()  # idempotent
    assert current_future() is None


def test_cancelled_error_from_work_cancels_the_future(executor: DaemonThreadPoolExecutor) -> None:
    def work() -> None:
        raise cf.CancelledError("owner closed")

    fut = APIFuture.run(executor, work)
    cf.wait([fut], timeout=5)
    assert fut.cancelled()


def test_cannot_cancel_after_result() -> None:
    fut = APIFuture.completed(3)
    assert not fut.cancel()
    assert fut.result() == 3
    failed: APIFuture[int] = APIFuture.failed(ValueError("x"))
    with pytest.raises(ValueError):
        failed.result()


def test_wait_and_as_completed_including_cancellation(executor: DaemonThreadPoolExecutor) -> None:
    gate = threading.Event()
    quick = APIFuture.run(executor, lambda: 1)
    slow = APIFuture.run(executor, gate.wait, 5)
    done, pending = cf.wait([quick, slow], timeout=5, return_when=cf.FIRST_COMPLETED)
    assert quick in done and slow in pending

    # a cancellation wakes waiters of wait()/as_completed()
    threading.Timer(0.02, slow.cancel).start()
    done, pending = cf.wait([slow], timeout=5)
    assert slow in done and not pending
    gate.set()

    futs = [APIFuture.run(executor, lambda i=i: i * i) for i in range(10)]
    assert sorted(f.result() for f in cf.as_completed(futs, timeout=5)) == [
        i * i for i in range(10)
    ]


def test_executor_dropping_queued_work_cancels_the_future() -> None:
    pool = DaemonThreadPoolExecutor(max_workers=1)
    gate = threading.Event()
    APIFuture.run(pool, gate.wait, 5)
    queued = APIFuture.run(pool, lambda: "never")
    pool.close()
    assert queued.cancelled()
    gate.set()


def test_await_result_async_coroutine_and_wrap_future(executor: DaemonThreadPoolExecutor) -> None:
    async def main() -> list[object]:
        a = APIFuture.run(executor, lambda: "a")
        b = APIFuture.run(executor, lambda: "b")
        c = APIFuture.run(executor, lambda: "c")
        d = APIFuture.run(executor, lambda: "d")
        return [
            await a,
            await b.result_async(timeout=5),
            await asyncio.create_task(c.coroutine()),
            await asyncio.wrap_future(d),
        ]

    assert asyncio.run(main()) == ["a", "b", "c", "d"]


def test_result_async_timeout_cancels_the_operation(executor: DaemonThreadPoolExecutor) -> None:
    gate = threading.Event()
    fut = APIFuture.run(executor, gate.wait, 5)

    async def main() -> None:
        with pytest.raises(TimeoutError):
            await fut.result_async(timeout=0.01)

    asyncio.run(main())
    assert fut.cancelled()
    gate.set()


def test_asyncio_gather_of_many_futures(executor: DaemonThreadPoolExecutor) -> None:
    async def main() -> list[int]:
        return await asyncio.gather(*(APIFuture.run(executor, lambda i=i: i) for i in range(20)))

    assert asyncio.run(main()) == list(range(20))


def test_combine_and_map(executor: DaemonThreadPoolExecutor) -> None:
    parts = [APIFuture.run(executor, lambda i=i: i) for i in range(5)]
    total = APIFuture.combine(parts, sum)
    assert total.result(timeout=5) == 10
    assert total.map(lambda v: v * 2).result(timeout=5) == 20
    assert APIFuture.combine([], lambda xs: len(xs)).result(timeout=1) == 0


def test_combine_failure_and_cancellation(executor: DaemonThreadPoolExecutor) -> None:
    gate = threading.Event()
    bad: APIFuture[int] = APIFuture.failed(RuntimeError("chunk 2 failed"))
    slow = APIFuture.run(executor, gate.wait, 5)
    combined = APIFuture.combine([slow, bad], lambda xs: xs)
    with pytest.raises(RuntimeError, match="chunk 2 failed"):
        combined.result(timeout=5)
    gate.set()

    gate2 = threading.Event()
    inputs = [APIFuture.run(executor, gate2.wait, 5) for _ in range(2)]
    combined2 = APIFuture.combine(inputs, lambda xs: xs)
    assert combined2.cancel()
    assert all(f.cancelled() for f in inputs)
    gate2.set()


def test_daemon_executor_threads_are_daemon_and_not_joined_at_exit() -> None:
    pool = DaemonThreadPoolExecutor(max_workers=3, thread_name_prefix="tinkex-test")
    gate = threading.Event()
    futs = [pool.submit(gate.wait, 5) for _ in range(3)]
    threads = list(pool._threads)
    assert len(threads) == 3
    assert all(t.daemon for t in threads)
    assert all(t.name.startswith("tinkex-test_") for t in threads)
    from concurrent.futures import thread as cf_thread

    assert not any(t in cf_thread._threads_queues for t in threads)  # type: ignore[attr-defined]
    gate.set()
    for f in futs:
        f.result(timeout=5)
    pool.close()
    with pytest.raises(RuntimeError):
        pool.submit(lambda: None)


def test_interpreter_exits_while_a_worker_is_blocked() -> None:
    code = (
        "import threading, time\n"
        "from tinkex._executor import DaemonThreadPoolExecutor\n"
        "pool = DaemonThreadPoolExecutor(2)\n"
        "pool.submit(threading.Event().wait)\n"
        "time.sleep(0.05)\n"
        "print('bye')\n"
    )
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert out.stdout.strip() == "bye"
    assert time.monotonic() - started < 20


def test_context_manager_closes(executor: DaemonThreadPoolExecutor) -> None:
    with DaemonThreadPoolExecutor(1) as pool:
        assert pool.submit(lambda: 5).result(timeout=5) == 5
    with pytest.raises(RuntimeError):
        pool.submit(lambda: None)


def test_cancel_racing_completion_never_breaks_waiters() -> None:
    pool = DaemonThreadPoolExecutor(max_workers=8)
    futures = [APIFuture.run(pool, lambda i=i: i) for i in range(2000)]
    cancellers = [
        threading.Thread(target=lambda fs=futures[k::4]: [f.cancel() for f in fs]) for k in range(4)
    ]
    for t in cancellers:
        t.start()
    for t in cancellers:
        t.join()
    _, pending = cf.wait(futures, timeout=10)
    assert not pending
    for i, f in enumerate(futures):
        assert f.cancelled() or f.result() == i
    pool.shutdown(wait=True)


def test_prestart_starts_daemon_workers_up_to_the_limit() -> None:
    import threading

    from tinkex._executor import DaemonThreadPoolExecutor

    pool = DaemonThreadPoolExecutor(max_workers=4, thread_name_prefix="prestart-test")
    try:
        assert pool.prestart(2) == 2
        assert pool.prestart() == 2  # the remaining ones
        assert pool.prestart() == 0
        workers = [t for t in threading.enumerate() if t.name.startswith("prestart-test")]
        assert len(workers) == 4 and all(t.daemon for t in workers)
        assert pool.submit(lambda: 41 + 1).result(timeout=5) == 42
    finally:
        pool.close()
    assert pool.prestart() == 0  # shut down: nothing starts


def test_awaitable_concurrent_future_mirrors_any_future() -> None:
    """``AwaitableConcurrentFuture(f)`` (tinker's name) settles like ``f``, and is awaitable."""
    from tinkex._futures import AwaitableConcurrentFuture

    source: cf.Future[int] = cf.Future()
    wrapped = AwaitableConcurrentFuture(source)
    assert isinstance(wrapped, APIFuture) and not wrapped.done()
    source.set_result(7)
    assert wrapped.result(timeout=1) == 7
    assert asyncio.run(wrapped.result_async(timeout=1)) == 7

    failing: cf.Future[int] = cf.Future()
    failed = AwaitableConcurrentFuture(failing)
    failing.set_exception(ValueError("boom"))
    with pytest.raises(ValueError, match="boom"):
        failed.result(timeout=1)

    pending: cf.Future[int] = cf.Future()
    AwaitableConcurrentFuture(pending).cancel()
    assert pending.cancelled()
