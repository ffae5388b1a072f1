"""Flow control: the per-key :class:`RateLimiter` and the :class:`BytesSemaphore`."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import ClassVar

__all__ = ["BytesSemaphore", "RateLimiter"]


class RateLimiter:
    """A back-off window shared by every request made with one (base URL, API key).

    A 429 answer calls :meth:`back_off`; every later request for the same key calls
    :meth:`wait` before it is sent and sleeps until the window has passed. Limiters for other
    keys are independent. Get the process-wide instance with :meth:`for_key`.

    Args:
        clock: monotonic clock (injectable for tests).
        sleep: how to wait (injectable for tests).
    """

    _registry: ClassVar[dict[tuple[str, str], RateLimiter]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._until = 0.0

    @classmethod
    def for_key(
        cls,
        base_url: str,
        api_key: str,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> RateLimiter:
        """The process-wide limiter of ``(base_url, api_key)``, created on first use.

        ``clock``/``sleep`` apply only when this call creates the limiter (tests reset the
        registry with :meth:`reset_registry` first). The key is stored hashed.
        """
        import hashlib  # once per transport, not per request; keeps import time low

        key = (base_url.rstrip("/"), hashlib.sha256(api_key.encode()).hexdigest())
        with cls._registry_lock:
            limiter = cls._registry.get(key)
            if limiter is None:
                limiter = cls(clock=clock or time.monotonic, sleep=sleep or time.sleep)
                cls._registry[key] = limiter
            return limiter

    @classmethod
    def reset_registry(cls) -> None:
        """Forget every registered limiter (tests)."""
        with cls._registry_lock:
            cls._registry.clear()

    def back_off(self, seconds: float) -> None:
        """Hold every later request for ``seconds`` from now (extends, never shortens)."""
        with self._lock:
            self._until = max(self._until, self._clock() + max(0.0, seconds))

    def remaining(self) -> float:
        """Seconds left in the current back-off window (0 when none)."""
        with self._lock:
            return max(0.0, self._until - self._clock())

    def wait(self) -> float:
        """Sleep until no back-off window is active; returns the seconds waited."""
        # Fast path without the lock: reading a float attribute is atomic; a stale value only
        # delays the request by one more (locked) check below.
        if self._until <= self._clock():
            return 0.0
        waited = 0.0
        while True:
            with self._lock:
                remaining = self._until - self._clock()
            if remaining <= 0:
                return waited
            self._sleep(remaining)
            waited += remaining

    def __repr__(self) -> str:
        return f"<RateLimiter back-off remaining={self.remaining():.3f}s>"


class BytesSemaphore:
    """Bounds the estimated bytes of requests in flight.

    :meth:`acquire` blocks until nothing is in flight or ``in_flight + nbytes <= capacity``,
    so one item larger than the capacity still passes (alone). Waiters are served as capacity
    frees up; :meth:`hold` is the context-manager form.

    Args:
        capacity: byte budget (> 0).
    """

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"BytesSemaphore capacity must be > 0, got {capacity}")
        self._capacity = int(capacity)
        self._in_flight = 0
        self._cond = threading.Condition(threading.Lock())

    @property
    def capacity(self) -> int:
        """The byte budget."""
        return self._capacity

    @property
    def in_flight(self) -> int:
        """Bytes currently acquired."""
        return self._in_flight

    def _fits(self, nbytes: int) -> bool:
        return self._in_flight == 0 or self._in_flight + nbytes <= self._capacity

    def acquire(self, nbytes: int, timeout: float | None = None) -> bool:
        """Reserve ``nbytes``; returns ``False`` if ``timeout`` seconds pass first.

        Raises:
            ValueError: ``nbytes`` is negative.
        """
        if nbytes < 0:
            raise ValueError(f"BytesSemaphore.acquire nbytes must be >= 0, got {nbytes}")
        with self._cond:
            if not self._cond.wait_for(lambda: self._fits(nbytes), timeout):
                return False
            self._in_flight += nbytes
            return True

    def release(self, nbytes: int) -> None:
        """Return ``nbytes`` previously acquired and wake waiters.

        Raises:
            ValueError: more bytes released than are in flight.
        """
        with self._cond:
            if nbytes < 0 or nbytes > self._in_flight:
                raise ValueError(
                    f"BytesSemaphore.release nbytes must be in [0, {self._in_flight}], got {nbytes}"
                )
            self._in_flight -= nbytes
            self._cond.notify_all()

    @contextlib.contextmanager
    def hold(self, nbytes: int, timeout: float | None = None) -> Iterator[None]:
        """Acquire ``nbytes`` for the ``with`` block.

        Raises:
            TimeoutError: the bytes could not be acquired within ``timeout`` seconds.
        """
        if not self.acquire(nbytes, timeout):
            raise TimeoutError(
                f"could not reserve {nbytes} bytes within {timeout} s "
                f"({self._in_flight}/{self._capacity} in flight)"
            )
        try:
            yield
        finally:
            self.release(nbytes)

    def __repr__(self) -> str:
        return f"<BytesSemaphore {self._in_flight}/{self._capacity} bytes in flight>"
