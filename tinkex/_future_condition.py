"""The condition variable of one :class:`~tinkex._futures.APIFuture`, in ~120 bytes.

``concurrent.futures.Future`` gives every future a ``threading.Condition``: an object with a
dict, five bound lock methods and a ``deque`` whose first block alone is 760 bytes, ~1.5 KB
in all. A client with thousands of samples in flight holds one future per sample, and most
of them are never waited on one by one (``concurrent.futures.wait`` waits on its own
event). :class:`FutureCondition` offers what ``Future`` and ``concurrent.futures.wait`` /
``as_completed`` use — ``with``, ``acquire``/``release``, ``wait``, ``notify``,
``notify_all`` — on a re-entrant lock (as ``Future``'s), and makes its list of waiting
threads on the first ``wait``.
"""

from __future__ import annotations

import _thread
import threading
from types import TracebackType
from typing import Any

__all__ = ["FutureCondition"]


class FutureCondition:
    """A ``threading.Condition`` over its own ``RLock``, without the per-instance weight."""

    __slots__ = ("_lock", "_waiters")

    def __init__(self) -> None:
        # threading.RLock() is the C lock, which has the save/restore methods wait() needs.
        self._lock: Any = threading.RLock()
        self._waiters: list[_thread.LockType] | None = None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Acquire the lock (as ``RLock.acquire``)."""
        return bool(self._lock.acquire(blocking, timeout))

    def release(self) -> None:
        """Release the lock once."""
        self._lock.release()

    def __enter__(self) -> bool:
        return bool(self._lock.acquire())

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._lock.release()

    def wait(self, timeout: float | None = None) -> bool:
        """Release the lock, sleep until notified or ``timeout`` seconds pass, re-acquire it.

        Returns False when the wait timed out.

        Raises:
            RuntimeError: the calling thread does not hold the lock.
        """
        lock = self._lock
        if not lock._is_owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        waiter = _thread.allocate_lock()
        waiter.acquire()
        if self._waiters is None:
            self._waiters = []
        waiters = self._waiters
        waiters.append(waiter)
        saved = lock._release_save()  # every level of the re-entrant lock
        woken = False
        try:
            if timeout is None:
                woken = waiter.acquire()
            elif timeout > 0:
                woken = waiter.acquire(True, timeout)
            else:
                woken = waiter.acquire(False)
            return woken
        finally:
            lock._acquire_restore(saved)
            if not woken and waiter in waiters:  # timed out: nobody will release it now
                waiters.remove(waiter)

    def notify(self, n: int = 1) -> None:
        """Wake up to ``n`` waiting threads (the caller holds the lock)."""
        if not self._lock._is_owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        waiters = self._waiters
        while waiters and n > 0:
            waiters.pop(0).release()
            n -= 1

    def notify_all(self) -> None:
        """Wake every waiting thread (the caller holds the lock)."""
        waiters = self._waiters
        self.notify(len(waiters) if waiters else 0)

    def __repr__(self) -> str:
        return f"<FutureCondition({self._lock!r}, waiters={len(self._waiters or ())})>"
