"""``DrainQueue``: many small jobs on a worker pool without a pool item and a loop wake-up each.

Thousands of samples of the null model arrive within milliseconds and each runs in ~50 us: a
``ThreadPoolExecutor.submit`` per job (a Future, a work item, a queue put, a condition) and a
``call_soon_threadsafe`` per outcome (a handle and a self-pipe write) cost as much as the job.
Here jobs wait in one deque; at most ``workers`` drain tasks run on the pool, each taking jobs
until the deque is empty and handing their outcomes back to the loop in batches (every
``batch`` outcomes, or once a batch is ``max_delay`` seconds old, and when the deque is empty).
Drains are started at the end of the loop iteration that queued the first job, so the jobs of
requests handled in one iteration (a wave of delayed requests becoming due) share one.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

__all__ = ["DrainQueue"]

#: called on the loop with a job's outcome; ``cancelled`` when it never ran (shutdown)
Done = Callable[[Any, bool], None]


class DrainQueue:
    """Runs ``fn()`` jobs on ``pool`` with at most ``workers`` drain tasks (module docstring).

    Args:
        pool: the executor the drain tasks run on.
        workers: the most drain tasks at once (the pool's worker count).
        call_in_loop: schedules ``fn(*args)`` on the event loop from a worker thread.
        call_soon: schedules ``fn()`` on the event loop from the loop (``loop.call_soon``).
        batch, max_delay: when a drain task hands its outcomes back.
    """

    def __init__(
        self,
        pool: Executor,
        workers: int,
        call_in_loop: Callable[..., None],
        call_soon: Callable[[Callable[[], None]], object],
        *,
        batch: int = 32,
        max_delay: float = 0.002,
    ) -> None:
        self._pool = pool
        self._workers = max(1, workers)
        self._call_in_loop = call_in_loop
        self._call_soon = call_soon
        self._start_scheduled = False
        self._batch = batch
        self._max_delay = max_delay
        self._lock = threading.Lock()
        self._jobs: deque[tuple[Callable[[], Any], Done]] = deque()
        self._active = 0
        self._closed = False

    def submit(self, fn: Callable[[], Any], done: Done) -> None:
        """Queue ``fn`` (which must not raise); ``done(outcome, False)`` runs on the loop.
        Call from the loop."""
        with self._lock:
            closed = self._closed
            if not closed:
                self._jobs.append((fn, done))
        if closed:
            done(None, True)
        elif not self._start_scheduled:
            self._start_scheduled = True
            self._call_soon(self._start)

    def _start(self) -> None:
        """Start drains for the queued jobs, up to ``workers`` at once (on the loop)."""
        self._start_scheduled = False
        with self._lock:
            wanted = min(self._workers - self._active, len(self._jobs))
            self._active += max(0, wanted)
        for _ in range(wanted):
            self._pool.submit(self._drain)

    def close(self) -> None:
        """Refuse new jobs; the queued ones are reported cancelled (on the loop)."""
        with self._lock:
            self._closed = True
            left, self._jobs = list(self._jobs), deque()
        if left:
            self._call_in_loop(_deliver, [(done, None, True) for _, done in left])

    def _next(self) -> tuple[Callable[[], Any], Done] | None:
        with self._lock:
            if self._jobs:
                return self._jobs.popleft()
            self._active -= 1
            return None

    def _drain(self) -> None:
        outcomes: list[tuple[Done, Any, bool]] = []
        started = 0.0
        while (job := self._next()) is not None:
            fn, done = job
            if not outcomes:
                started = time.monotonic()
            outcomes.append((done, fn(), False))
            if len(outcomes) >= self._batch or time.monotonic() - started > self._max_delay:
                self._call_in_loop(_deliver, outcomes)
                outcomes = []
        if outcomes:
            self._call_in_loop(_deliver, outcomes)


def _deliver(outcomes: list[tuple[Done, Any, bool]]) -> None:
    for done, outcome, cancelled in outcomes:
        done(outcome, cancelled)
