"""``with_retry``: retry any call with exponential backoff and jitter, reporting each retry."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from tinkex._exceptions import APIConnectionError, APIStatusError, RetryableException
from tinkex.telemetry import HTTP_RETRY, emit, has_handlers

if TYPE_CHECKING:
    import tenacity

    from tinkex.resilience._breaker import CircuitBreaker

T = TypeVar("T")

#: Exceptions retried by default (``APITimeoutError`` is an ``APIConnectionError``).
DEFAULT_RETRY_ON: tuple[type[BaseException], ...] = (
    APIConnectionError,
    RetryableException,
    ConnectionError,
    TimeoutError,
)
#: HTTP statuses retried by default (plus every status >= 500).
DEFAULT_RETRY_STATUSES: frozenset[int] = frozenset({408, 409, 429})


def _positive(name: str) -> Callable[[Any, Any, Any], None]:
    def check(instance: Any, attribute: Any, value: Any) -> None:
        if value is not None and value < 0:
            raise ValueError(f"BackoffPolicy.{name} must be >= 0, got {value}")

    return check


@attrs.frozen
class BackoffPolicy:
    """How :func:`with_retry` retries: which errors, how often, how long to wait.

    The wait before retry ``n`` (0-based) is ``min(base_delay * multiplier**n, max_delay)``
    scaled by a uniform factor in ``[1 - jitter, 1 + jitter]``.

    Attributes:
        max_attempts: total attempts including the first (``None``: unlimited).
        base_delay, max_delay, multiplier, jitter: the backoff curve (seconds).
        timeout: give up once this many seconds have passed since the first attempt.
        retry_on: exception types that are retried.
        retry_statuses: HTTP statuses (of ``APIStatusError``) that are retried; 5xx always are.
        retry_if: optional extra predicate; an exception is retried when it returns ``True``.
    """

    max_attempts: int | None = attrs.field(default=4)
    base_delay: float = attrs.field(default=0.5, validator=_positive("base_delay"))
    max_delay: float = attrs.field(default=10.0, validator=_positive("max_delay"))
    multiplier: float = attrs.field(default=2.0, validator=_positive("multiplier"))
    jitter: float = attrs.field(default=0.25)
    timeout: float | None = attrs.field(default=None, validator=_positive("timeout"))
    retry_on: tuple[type[BaseException], ...] = attrs.field(
        default=DEFAULT_RETRY_ON, converter=tuple
    )
    retry_statuses: frozenset[int] = attrs.field(
        default=DEFAULT_RETRY_STATUSES, converter=frozenset
    )
    retry_if: Callable[[BaseException], bool] | None = None

    @max_attempts.validator
    def _check_attempts(self, attribute: Any, value: int | None) -> None:
        if value is not None and value < 1:
            raise ValueError(f"BackoffPolicy.max_attempts must be >= 1 or None, got {value}")

    @jitter.validator
    def _check_jitter(self, attribute: Any, value: float) -> None:
        if not 0 <= value <= 1:
            raise ValueError(f"BackoffPolicy.jitter must be in [0, 1], got {value}")

    def should_retry(self, exc: BaseException) -> bool:
        """Whether ``exc`` is worth another attempt under this policy."""
        from tinkex.resilience._breaker import CircuitOpenError

        if isinstance(exc, CircuitOpenError):
            return False
        if isinstance(exc, APIStatusError):
            if exc.status_code >= 500 or exc.status_code in self.retry_statuses:
                return True
        elif isinstance(exc, self.retry_on):
            return True
        return self.retry_if is not None and self.retry_if(exc)

    def delay(self, retry_index: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry_index`` (0 = the first retry)."""
        base = min(self.base_delay * self.multiplier**retry_index, self.max_delay)
        if self.jitter == 0:
            return base
        factor = (rng or random).uniform(1 - self.jitter, 1 + self.jitter)
        return max(0.0, base * factor)

    @classmethod
    def from_retry_config(cls, config: Any) -> BackoffPolicy:
        """Translate a sampling ``RetryConfig`` (``tinkex.lib.retry_handler``) into a policy.

        Reads ``retry_delay_base``, ``retry_delay_max``, ``jitter_factor``,
        ``retryable_exceptions``, ``progress_timeout`` and ``enable_retry_logic``; attempts are
        unlimited within ``progress_timeout``, as for sampling.
        """
        enabled = bool(getattr(config, "enable_retry_logic", True))
        retry_on = tuple(getattr(config, "retryable_exceptions", DEFAULT_RETRY_ON))
        return cls(
            max_attempts=None if enabled else 1,
            base_delay=float(getattr(config, "retry_delay_base", 0.5)),
            max_delay=float(getattr(config, "retry_delay_max", 10.0)),
            jitter=float(getattr(config, "jitter_factor", 0.25)),
            timeout=getattr(config, "progress_timeout", None),
            retry_on=retry_on,
        )


def _coerce(config: BackoffPolicy | Any | None) -> BackoffPolicy:
    if config is None:
        return BackoffPolicy()
    if isinstance(config, BackoffPolicy):
        return config
    if hasattr(config, "retry_delay_base"):
        return BackoffPolicy.from_retry_config(config)
    raise TypeError(
        f"with_retry config must be a BackoffPolicy or a RetryConfig, got {type(config).__name__}"
    )


def with_retry(
    fn: Callable[[], T],
    config: BackoffPolicy | Any | None = None,
    *,
    name: str = "call",
    breaker: CircuitBreaker | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    event: str = HTTP_RETRY,
) -> T:
    """Call ``fn()`` and retry it under ``config``; return its first successful result.

    ``config`` is a :class:`BackoffPolicy`, a ``RetryConfig`` (translated by
    :meth:`BackoffPolicy.from_retry_config`) or ``None`` for the default policy. Before each
    retry the telemetry event ``event`` (default ``tinkex.http.retry``) is emitted with
    measurements ``attempt``/``delay`` and metadata ``name`` (also as ``request``, like the
    transport's retries, so ``name="POST /api/v1/x"`` is attributed to that endpoint by
    :mod:`tinkex.metrics`), ``retry_count``, ``error_type`` and ``error``. With ``breaker``,
    every attempt goes through it and an open circuit stops the retries at once. Built on
    tenacity; ``sleep`` and ``rng`` are injectable for tests.

    >>> with_retry(lambda: 42, BackoffPolicy(max_attempts=2))
    42

    Raises:
        The last exception when attempts or time run out, or the first non-retryable one.
    """
    import tenacity

    policy = _coerce(config)
    stop: tenacity.stop.stop_base = tenacity.stop_never
    if policy.max_attempts is not None:
        stop = tenacity.stop_after_attempt(policy.max_attempts)
    if policy.timeout is not None:
        stop = stop | tenacity.stop_after_delay(policy.timeout)

    def wait(state: tenacity.RetryCallState) -> float:
        return policy.delay(state.attempt_number - 1, rng)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        if not has_handlers(event):
            return
        exc = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        emit(
            event,
            {"attempt": float(state.attempt_number), "delay": float(delay)},
            {
                "name": name,
                "request": name,
                "retry_count": state.attempt_number,
                "error_type": type(exc).__name__ if exc is not None else None,
                "error": str(exc) if exc is not None else None,
            },
        )

    retrying = tenacity.Retrying(
        stop=stop,
        wait=wait,
        retry=tenacity.retry_if_exception(policy.should_retry),
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )
    if breaker is None:
        return retrying(fn)
    guarded = breaker
    return retrying(lambda: guarded.call(fn))
