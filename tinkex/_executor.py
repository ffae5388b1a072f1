"""A thread pool whose workers never hold up interpreter exit.

Why: since Python 3.9 ``ThreadPoolExecutor`` workers are non-daemon threads that the
interpreter joins at exit (``concurrent.futures.thread._python_exit``). Our workers spend most
of their time blocked in long-polls (``retrieve_future`` waits up to 45 s per call, and a
future may be polled for hours), so a script that forgot to close its client — or that simply
returns while a future is pending — would hang at exit. Workers of
:class:`DaemonThreadPoolExecutor` are daemon threads and are not registered for the exit join;
whatever they are doing is abandoned when the interpreter exits, which is what a user who
leaves a script expects. Work that must finish (a session ``finish`` call) is done by owners
in ``close()``, not left to the interpreter.
"""

from __future__ import annotations

import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import thread as _cf_thread
from typing import Any

__all__ = ["DaemonThreadPoolExecutor"]


class DaemonThreadPoolExecutor(ThreadPoolExecutor):
    """``ThreadPoolExecutor`` with daemon worker threads that are not joined at exit.

    Args:
        max_workers: maximum number of worker threads (created on demand).
        thread_name_prefix: prefix of worker thread names, e.g. ``"tinkex-holder"``.

    ``close()`` stops accepting work, cancels queued work and returns without waiting for
    running work (``shutdown(wait=False, cancel_futures=True)``). Also a context manager.
    """

    def __init__(self, max_workers: int | None = None, thread_name_prefix: str = "tinkex") -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)

    def _adjust_thread_count(self) -> None:
        # Mirrors ThreadPoolExecutor._adjust_thread_count, with two differences: the thread is
        # a daemon, and it is not added to concurrent.futures.thread._threads_queues (the list
        # the interpreter joins at exit).
        if self._idle_semaphore.acquire(timeout=0):
            return
        self._start_worker()

    def prestart(self, count: int | None = None) -> int:
        """Start up to ``count`` (default: all) worker threads now; returns how many started.

        A burst of work otherwise pays for thread creation on the caller's thread, one new
        worker per submission, exactly when it is busiest.
        """
        target = self._max_workers if count is None else min(count, self._max_workers)
        started = 0
        with self._shutdown_lock:
            if self._shutdown:
                return 0
            while len(self._threads) < target:
                self._start_worker()
                started += 1
        return started

    def _start_worker(self) -> None:
        def wake_on_collect(_: Any, queue: Any = self._work_queue) -> None:
            queue.put(None)

        num_threads = len(self._threads)
        if num_threads >= self._max_workers:
            return
        name = f"{self._thread_name_prefix or self}_{num_threads}"
        ref = weakref.ref(self, wake_on_collect)
        args: tuple[Any, ...]
        create_context = getattr(self, "_create_worker_context", None)
        if create_context is not None:  # Python >= 3.14
            args = (ref, create_context(), self._work_queue)
        else:
            args = (ref, self._work_queue, self._initializer, self._initargs)
        worker = threading.Thread(
            name=name,
            target=_cf_thread._worker,  # type: ignore[attr-defined]
            args=args,
            daemon=True,
        )
        worker.start()
        self._threads.add(worker)  # type: ignore[attr-defined]

    def close(self) -> None:
        """Stop accepting work, cancel queued work, don't wait for running work."""
        self.shutdown(wait=False, cancel_futures=True)

    def __exit__(self, *exc_info: object) -> None:  # type: ignore[override]
        self.close()
