"""Per-endpoint circuit breakers: stop calling something that keeps failing, probe it later."""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from tinkex._exceptions import APIStatusError, TinkerError
from tinkex.telemetry import (
    CIRCUIT_BREAKER_STATE_CHANGE,
    CircuitBreakerMetadata,
    emit,
    has_handlers,
)

P = ParamSpec("P")
T = TypeVar("T")


class CircuitState(enum.StrEnum):
    """Where a breaker is: passing calls, rejecting them, or letting a probe through."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpenError(TinkerError):
    """A call was rejected because its circuit breaker is open.

    Attributes:
        name: the breaker (usually the endpoint, e.g. ``"POST /api/v1/asample"``).
        retry_after: seconds until the breaker lets a probe call through (0 when half-open and
            its probe slots are taken).
        failures: consecutive failures that opened it.
    """

    def __init__(self, name: str, retry_after: float, failures: int = 0) -> None:
        self.name = name
        self.retry_after = max(0.0, retry_after)
        self.failures = failures
        self.message = (
            f"circuit breaker {name!r} is open after {failures} consecutive failures; "
            f"retry in {self.retry_after:.1f} s"
        )
        super().__init__(self.message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.name, self.retry_after, self.failures))


def default_is_failure(exc: BaseException) -> bool:
    """Count everything except client errors (HTTP 4xx other than 408/429) as a failure.

    A 400 means the endpoint is up and answered; it should not trip the breaker.
    """
    if isinstance(exc, APIStatusError):
        return not (400 <= exc.status_code < 500) or exc.status_code in (408, 429)
    return True


class CircuitBreaker:
    """Closed -> open after ``failure_threshold`` consecutive failures; open -> half-open after
    ``reset_timeout`` seconds; half-open lets ``half_open_max_calls`` probes through, and closes
    after ``success_threshold`` successful probes or re-opens on a failed one.

    Use :meth:`call`, or the breaker as a context manager::

        breaker = CircuitBreaker("POST /api/v1/asample", failure_threshold=3, reset_timeout=10)
        result = breaker.call(do_request, payload)
        with breaker:
            do_request(payload)

    Exceptions for which ``is_failure`` returns ``False`` (by default client errors, HTTP 4xx
    except 408/429) count as successes: the endpoint answered. ``clock`` is injectable.
    State changes emit the telemetry event ``tinkex.circuit_breaker.state_change``.

    Raises:
        ValueError: a threshold or timeout is out of range.
    """

    def __init__(
        self,
        name: str = "default",
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        half_open_max_calls: int = 1,
        success_threshold: int = 1,
        is_failure: Callable[[BaseException], bool] = default_is_failure,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(
                f"CircuitBreaker.failure_threshold must be >= 1, got {failure_threshold}"
            )
        if reset_timeout < 0:
            raise ValueError(f"CircuitBreaker.reset_timeout must be >= 0, got {reset_timeout}")
        if half_open_max_calls < 1:
            raise ValueError(
                f"CircuitBreaker.half_open_max_calls must be >= 1, got {half_open_max_calls}"
            )
        if success_threshold < 1:
            raise ValueError(
                f"CircuitBreaker.success_threshold must be >= 1, got {success_threshold}"
            )
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.half_open_max_calls = half_open_max_calls
        self.success_threshold = success_threshold
        self.is_failure = is_failure
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._half_open_successes = 0
        self._probes = 0
        self._opened_at = 0.0

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker({self.name!r}, state={self.state.value}, "
            f"failures={self.failure_count}/{self.failure_threshold})"
        )

    @property
    def state(self) -> CircuitState:
        """The current state (an open breaker whose timeout elapsed reports half-open)."""
        with self._lock:
            change = self._refresh()
        self._announce(change)
        return self._state

    @property
    def failure_count(self) -> int:
        """Consecutive failures counted so far."""
        return self._failures

    def retry_after(self) -> float:
        """Seconds until an open breaker admits a probe (0 when not open)."""
        with self._lock:
            if self._state is not CircuitState.OPEN:
                return 0.0
            return max(0.0, self._opened_at + self.reset_timeout - self._clock())

    def acquire(self) -> None:
        """Ask permission for one call; pair it with :meth:`record_success`/:meth:`record_failure`.

        Raises:
            CircuitOpenError: the breaker is open, or half-open with every probe slot taken.
        """
        with self._lock:
            change = self._refresh()
            if self._state is CircuitState.OPEN:
                error = CircuitOpenError(
                    self.name, self._opened_at + self.reset_timeout - self._clock(), self._failures
                )
            elif self._state is CircuitState.HALF_OPEN:
                if self._probes >= self.half_open_max_calls:
                    error = CircuitOpenError(self.name, 0.0, self._failures)
                else:
                    self._probes += 1
                    error = None
            else:
                error = None
        self._announce(change)
        if error is not None:
            raise error

    def record_success(self) -> None:
        """Report that a permitted call succeeded (or failed in a way that does not count)."""
        with self._lock:
            change = None
            if self._state is CircuitState.HALF_OPEN:
                self._probes = max(0, self._probes - 1)
                self._half_open_successes += 1
                if self._half_open_successes >= self.success_threshold:
                    change = self._transition(CircuitState.CLOSED)
            self._failures = 0
        self._announce(change)

    def record_failure(self) -> None:
        """Report that a permitted call failed."""
        with self._lock:
            change = None
            self._failures += 1
            if self._state is CircuitState.HALF_OPEN:
                self._probes = max(0, self._probes - 1)
                change = self._transition(CircuitState.OPEN)
            elif self._state is CircuitState.CLOSED and self._failures >= self.failure_threshold:
                change = self._transition(CircuitState.OPEN)
        self._announce(change)

    def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` through the breaker and return its result.

        Raises:
            CircuitOpenError: the breaker rejected the call (``fn`` did not run).
        """
        self.acquire()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._record_exception(exc)
            raise
        self.record_success()
        return result

    def reset(self) -> None:
        """Force the breaker closed with no failures counted."""
        with self._lock:
            change = self._transition(CircuitState.CLOSED)
            self._failures = 0
        self._announce(change)

    def __enter__(self) -> CircuitBreaker:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.record_success()
        else:
            self._record_exception(exc)

    # -- internals (call with the lock held unless noted) ------------------------------------

    def _record_exception(self, exc: BaseException) -> None:
        if not isinstance(exc, Exception):  # KeyboardInterrupt etc.: release the slot only
            with self._lock:
                if self._state is CircuitState.HALF_OPEN:
                    self._probes = max(0, self._probes - 1)
            return
        if self.is_failure(exc):
            self.record_failure()
        else:
            self.record_success()

    def _refresh(self) -> tuple[CircuitState, CircuitState] | None:
        if (
            self._state is CircuitState.OPEN
            and self._clock() - self._opened_at >= self.reset_timeout
        ):
            return self._transition(CircuitState.HALF_OPEN)
        return None

    def _transition(self, new: CircuitState) -> tuple[CircuitState, CircuitState] | None:
        old = self._state
        if old is new:
            return None
        self._state = new
        self._probes = 0
        self._half_open_successes = 0
        if new is CircuitState.OPEN:
            self._opened_at = self._clock()
        return (old, new)

    def _announce(self, change: tuple[CircuitState, CircuitState] | None) -> None:
        # Called without the lock so a handler may inspect the breaker.
        if change is None or not has_handlers(CIRCUIT_BREAKER_STATE_CHANGE):
            return
        old, new = change
        meta: CircuitBreakerMetadata = {"name": self.name, "from": old.value, "to": new.value}
        emit(CIRCUIT_BREAKER_STATE_CHANGE, {"failures": float(self._failures)}, meta)


class CircuitBreakerRegistry:
    """One :class:`CircuitBreaker` per name (e.g. per endpoint), created on first use.

    ``defaults`` are the keyword arguments of :class:`CircuitBreaker` applied to every breaker
    the registry creates::

        breakers = CircuitBreakerRegistry(failure_threshold=3, reset_timeout=10)
        breakers.call("POST /api/v1/asample", send, request)
    """

    def __init__(self, **defaults: Any) -> None:
        CircuitBreaker("validate", **defaults)  # fail fast on bad defaults
        self._defaults = defaults
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, name: str, **overrides: Any) -> CircuitBreaker:
        """The breaker called ``name``; ``overrides`` apply only when it is created now."""
        with self._lock:
            breaker = self._breakers.get(name)
            if breaker is None:
                breaker = CircuitBreaker(name, **{**self._defaults, **overrides})
                self._breakers[name] = breaker
            return breaker

    def call(self, name: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``self.get(name).call(fn, *args, **kwargs)``."""
        return self.get(name).call(fn, *args, **kwargs)

    def states(self) -> dict[str, CircuitState]:
        """Name -> current state of every breaker."""
        with self._lock:
            breakers = list(self._breakers.values())
        return {breaker.name: breaker.state for breaker in breakers}

    def reset(self, name: str | None = None) -> None:
        """Close one breaker (``name``) or all of them."""
        with self._lock:
            targets = list(self._breakers.values()) if name is None else [self._breakers[name]]
        for breaker in targets:
            breaker.reset()

    def remove(self, name: str) -> bool:
        """Forget a breaker; returns whether it existed."""
        with self._lock:
            return self._breakers.pop(name, None) is not None

    def __contains__(self, name: object) -> bool:
        return name in self._breakers

    def __len__(self) -> int:
        return len(self._breakers)
