"""DrainQueue: jobs run on the pool by at most ``workers`` drain tasks, outcomes come back on
the loop in batches, and jobs still queued at close are reported cancelled."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tinkex.local.engine.batches import DrainQueue


def _run(workers: int, jobs: int, block: threading.Event | None = None) -> dict[str, Any]:
    """Queue ``jobs`` jobs from a loop (with ``block``: the first blocks until the queue is
    closed, then one more is submitted); returns what was seen."""
    seen: dict[str, Any] = {"outcomes": [], "threads": set(), "loop_thread": [], "peak": 0}
    running = [0]
    lock = threading.Lock()

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        pool = ThreadPoolExecutor(max_workers=4)
        queue = DrainQueue(pool, workers, loop.call_soon_threadsafe, loop.call_soon, batch=5)
        finished = asyncio.Event()

        def job(i: int) -> Any:
            with lock:
                running[0] += 1
                seen["peak"] = max(seen["peak"], running[0])
            if block is not None:
                block.wait(5)
            seen["threads"].add(threading.get_ident())
            with lock:
                running[0] -= 1
            return i * i

        def done(outcome: Any, cancelled: bool) -> None:
            seen["loop_thread"].append(threading.get_ident() == main)
            seen["outcomes"].append((outcome, cancelled))
            if len(seen["outcomes"]) == jobs + (block is not None):
                finished.set()

        main = threading.get_ident()
        for i in range(jobs):
            queue.submit(lambda i=i: job(i), done)
        if block is not None:
            await asyncio.sleep(0.2)
            queue.close()  # the jobs not started yet are cancelled
            block.set()
            queue.submit(lambda: job(-1), done)  # refused at once
        await asyncio.wait_for(finished.wait(), 10)
        pool.shutdown(wait=True)

    asyncio.run(scenario())
    return seen


def test_every_job_runs_once_and_its_outcome_comes_back_on_the_loop() -> None:
    seen = _run(workers=2, jobs=200)
    assert sorted(o for o, _ in seen["outcomes"]) == [i * i for i in range(200)]
    assert not any(cancelled for _, cancelled in seen["outcomes"])
    assert all(seen["loop_thread"]) and seen["peak"] <= 2


def test_jobs_queued_at_close_are_reported_cancelled() -> None:
    seen = _run(workers=1, jobs=10, block=threading.Event())
    ran = [o for o, cancelled in seen["outcomes"] if not cancelled]
    cancelled = [o for o, c in seen["outcomes"] if c]
    assert ran == [0] and cancelled == [None] * 10  # one was running; it finished
