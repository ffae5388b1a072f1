"""The samplers' back-off after a 429 without a hint (docs/protocol.md, "Sampling"; issue 11.5).

A 429 to ``asample`` that carries a ``Retry-After``/``retry-after-ms`` hint is honoured by the
transport's per-key :class:`~tinkex._transport.RateLimiter` (the local server hints 50 ms, so
tinkex keeps up with it). Without a hint, a holder's samplers do as the official SDK does:
every sample submission of the holder waits 1 s (5 s when the prompt is estimated over
128 KiB), and for 10 s after that back-off, dispatch is throttled to 10 submissions at once
with their byte estimates counted 20 times.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import CancelledError
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tinkex._transport import BytesSemaphore

__all__ = ["SampleBackoff"]

#: Back-off after an unhinted 429, for prompts up to / over ``LARGE_PROMPT_BYTES``.
BACKOFF_SMALL = 1.0
BACKOFF_LARGE = 5.0
LARGE_PROMPT_BYTES = 128 * 1024
#: How long after a back-off dispatch stays throttled, and how.
THROTTLE_SECONDS = 10.0
THROTTLED_CONCURRENCY = 10
THROTTLED_BYTES_FACTOR = 20
#: How often a coroutine waiting for a dispatch slot or bytes looks again.
_RECHECK = 0.01


class SampleBackoff:
    """The back-off window and dispatch throttle shared by one holder's samplers.

    Args:
        clock: monotonic clock (tests).
        throttled_concurrency: submissions at once while throttled.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        throttled_concurrency: int = THROTTLED_CONCURRENCY,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._until: float | None = None
        self.throttled_concurrency = throttled_concurrency
        self._throttle = threading.BoundedSemaphore(throttled_concurrency)

    def back_off(self, nbytes: int) -> float:
        """Hold every sample submission (1 s, or 5 s for a large prompt); returns the seconds."""
        seconds = BACKOFF_LARGE if nbytes > LARGE_PROMPT_BYTES else BACKOFF_SMALL
        with self._lock:
            until = self._clock() + seconds
            self._until = until if self._until is None else max(self._until, until)
        return seconds

    def remaining(self) -> float:
        """Seconds left in the back-off window (0 when none)."""
        with self._lock:
            return 0.0 if self._until is None else max(0.0, self._until - self._clock())

    def throttled(self) -> bool:
        """Whether dispatch is throttled: during a back-off and ``THROTTLE_SECONDS`` after it."""
        with self._lock:
            return self._until is not None and self._clock() - self._until < THROTTLE_SECONDS

    def wait(self, stop: threading.Event) -> None:
        """Wait until the back-off window has passed.

        Raises:
            concurrent.futures.CancelledError: ``stop`` was set (the client is closing).
        """
        while (remaining := self.remaining()) > 0:
            if stop.wait(remaining):
                raise CancelledError("sample submission cancelled: client is closing")

    @contextlib.contextmanager
    def dispatch(self, nbytes: int, budget: BytesSemaphore) -> Iterator[None]:
        """Hold a submission's place: its bytes on ``budget`` (x20 and one of 10 slots while
        throttled)."""
        if not self.throttled():
            with budget.hold(nbytes):
                yield
            return
        with self._throttle, budget.hold(nbytes * THROTTLED_BYTES_FACTOR):
            yield

    # ---- the same for coroutines on the holder's I/O loop (tinkex/_ioloop.py) -------------

    async def await_window(self, stop: threading.Event) -> None:
        """:meth:`wait` for a coroutine (``asyncio.sleep``; task cancellation ends it).

        Raises:
            concurrent.futures.CancelledError: ``stop`` was set (the client is closing).
        """
        import asyncio

        while (remaining := self.remaining()) > 0:
            await asyncio.sleep(remaining)
            if stop.is_set():
                raise CancelledError("sample submission cancelled: client is closing")

    @contextlib.asynccontextmanager
    async def adispatch(self, nbytes: int, budget: BytesSemaphore) -> AsyncIterator[None]:
        """:meth:`dispatch` for a coroutine: the same slot and bytes, waited for without
        blocking the loop (:meth:`aacquire` / :meth:`release`)."""
        throttled = await self.aacquire(nbytes, budget)
        try:
            yield
        finally:
            self.release(nbytes, budget, throttled)

    async def aacquire(self, nbytes: int, budget: BytesSemaphore) -> bool:
        """Wait for a submission's place (see :meth:`dispatch`); whether it is throttled, for
        :meth:`release`. A pair of calls, not a context manager, on the sample path: a sample
        waiting for its answer would hold the manager's generator and its exit meanwhile."""
        import asyncio

        throttled = self.throttled()
        size = nbytes * THROTTLED_BYTES_FACTOR if throttled else nbytes
        if throttled:
            while not self._throttle.acquire(blocking=False):
                await asyncio.sleep(_RECHECK)
        try:
            while not budget.acquire(size, 0):
                await asyncio.sleep(_RECHECK)
        except BaseException:
            if throttled:
                self._throttle.release()
            raise
        return throttled

    def release(self, nbytes: int, budget: BytesSemaphore, throttled: bool) -> None:
        """Give back the place :meth:`aacquire` took for ``nbytes``."""
        budget.release(nbytes * THROTTLED_BYTES_FACTOR if throttled else nbytes)
        if throttled:
            self._throttle.release()
