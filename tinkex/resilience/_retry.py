"""``with_retry``: retry any call under a :class:`~tinkex._transport.retry.RetryPolicy`.

The policy type is the SDK's one (``tinkex._transport.retry.RetryPolicy``, re-exported here);
:class:`BackoffPolicy` is its deprecated former spelling, kept so existing code keeps working.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from tinkex._deprecation import warn_deprecated
from tinkex._exceptions import APIConnectionError, RetryableException
from tinkex._transport.retry import RETRYABLE_STATUSES, RetryPolicy
from tinkex.telemetry import HTTP_RETRY

if TYPE_CHECKING:
    from tinkex.resilience._breaker import CircuitBreaker

__all__ = [
    "DEFAULT_RETRY_ON",
    "DEFAULT_RETRY_STATUSES",
    "BackoffPolicy",
    "RetryPolicy",
    "default_retry_policy",
    "with_retry",
]

T = TypeVar("T")

#: Exceptions retried by default (``APITimeoutError`` is an ``APIConnectionError``).
DEFAULT_RETRY_ON: tuple[type[BaseException], ...] = (
    APIConnectionError,
    RetryableException,
    ConnectionError,
    TimeoutError,
)
#: HTTP statuses retried by default (plus every status >= 500).
DEFAULT_RETRY_STATUSES: frozenset[int] = RETRYABLE_STATUSES


def default_retry_policy(
    *,
    max_retries: int | None = 3,
    retry_on: tuple[type[BaseException], ...] = DEFAULT_RETRY_ON,
    **fields: Any,
) -> RetryPolicy:
    """The policy :func:`with_retry` uses when given none.

    Four attempts; ``DEFAULT_RETRY_ON`` exceptions and 408/409/429/5xx are retried after
    ``min(0.5 * 2**n, 10) * U(0.75, 1.25)`` s. ``fields`` override any other
    :class:`RetryPolicy` field.
    """
    values: dict[str, Any] = {
        "name": "with_retry",
        "max_retries": max_retries,
        "retry_connection_errors": False,  # decided by retry_on, like every other type
        "retry_exceptions": retry_on,
        "backoff_initial": 0.5,
        "backoff_max": 10.0,
        "jitter": 0.25,
        "symmetric_jitter": True,
    }
    values.update(fields)
    return RetryPolicy(**values)


class BackoffPolicy(RetryPolicy):
    """DEPRECATED: a :class:`RetryPolicy` built from the former ``BackoffPolicy`` fields.

    ``BackoffPolicy(max_attempts, base_delay, max_delay, multiplier, jitter, timeout,
    retry_on, retry_statuses, retry_if)`` is ``default_retry_policy(...)`` with
    ``max_retries = max_attempts - 1``, ``backoff_initial = base_delay``, ``backoff_max =
    max_delay``, ``backoff_multiplier = multiplier``, ``max_elapsed = timeout``; the old
    attribute names and :meth:`delay` still read as before.

    Raises:
        ValueError: ``max_attempts`` < 1, ``jitter`` outside [0, 1], a negative delay.
    """

    def __init__(
        self,
        max_attempts: int | None = 4,
        base_delay: float = 0.5,
        max_delay: float = 10.0,
        multiplier: float = 2.0,
        jitter: float = 0.25,
        timeout: float | None = None,
        retry_on: tuple[type[BaseException], ...] = DEFAULT_RETRY_ON,
        retry_statuses: frozenset[int] = DEFAULT_RETRY_STATUSES,
        retry_if: Callable[[BaseException], bool] | None = None,
    ) -> None:
        warn_deprecated(
            "BackoffPolicy", "use tinkex.resilience.RetryPolicy", category=DeprecationWarning
        )
        if max_attempts is not None and max_attempts < 1:
            raise ValueError(f"BackoffPolicy.max_attempts must be >= 1 or None, got {max_attempts}")
        template = default_retry_policy(
            max_retries=None if max_attempts is None else max_attempts - 1,
            retry_on=tuple(retry_on),
            retry_statuses=frozenset(retry_statuses),
            retry_if=retry_if,
            backoff_initial=base_delay,
            backoff_max=max_delay,
            backoff_multiplier=multiplier,
            jitter=jitter,
            max_elapsed=timeout,
        )
        super().__init__(**attrs.asdict(template, recurse=False))

    @property
    def max_attempts(self) -> int | None:
        """Total attempts including the first (``None``: unlimited)."""
        return None if self.max_retries is None else self.max_retries + 1

    @property
    def base_delay(self) -> float:
        """Former name of ``backoff_initial``."""
        return self.backoff_initial

    @property
    def max_delay(self) -> float:
        """Former name of ``backoff_max``."""
        return self.backoff_max

    @property
    def multiplier(self) -> float:
        """Former name of ``backoff_multiplier``."""
        return self.backoff_multiplier

    @property
    def timeout(self) -> float | None:
        """Former name of ``max_elapsed``."""
        return self.max_elapsed

    @property
    def retry_on(self) -> tuple[type[BaseException], ...]:
        """Former name of ``retry_exceptions``."""
        return self.retry_exceptions

    def should_retry(self, exc: BaseException) -> bool:
        """Former name of ``is_retryable`` (an open circuit is never retried)."""
        return _for_with_retry(self).is_retryable(exc)

    def delay(self, retry_index: int, rng: random.Random | None = None) -> float:
        """Former name of ``retry_delay`` (no server-requested delay)."""
        return self.retry_delay(None, retry_index, rng)

    @classmethod
    def from_retry_config(
        cls, config: Any, *, enabled: bool = True, stuck_detection: bool = True
    ) -> BackoffPolicy:
        """A policy from a sampling ``RetryConfig`` (see ``RetryPolicy.from_retry_config``)."""
        policy = RetryPolicy.from_retry_config(
            config, enabled=enabled, stuck_detection=stuck_detection
        )
        return cls(
            max_attempts=None if policy.max_retries is None else policy.max_retries + 1,
            base_delay=policy.backoff_initial,
            max_delay=policy.backoff_max,
            jitter=policy.jitter,
            timeout=policy.max_elapsed,
            retry_on=policy.retry_exceptions,
        )


def _as_policy(config: RetryPolicy | Any | None) -> RetryPolicy:
    if config is None:
        return default_retry_policy()
    if isinstance(config, RetryPolicy):
        return config
    if hasattr(config, "retry_delay_base"):
        return RetryPolicy.from_retry_config(config)
    raise TypeError(
        "with_retry config must be a RetryPolicy (or the deprecated BackoffPolicy) or a "
        f"RetryConfig, got {type(config).__name__}"
    )


def _for_with_retry(policy: RetryPolicy) -> RetryPolicy:
    """``policy`` as a plain RetryPolicy that never retries an open circuit breaker."""
    from tinkex.resilience._breaker import CircuitOpenError

    fields = attrs.asdict(policy, recurse=False)
    fields["never_retry"] = (*policy.never_retry, CircuitOpenError)
    return RetryPolicy(**fields)


def with_retry(
    fn: Callable[[], T],
    config: RetryPolicy | Any | None = None,
    *,
    name: str = "call",
    breaker: CircuitBreaker | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    event: str = HTTP_RETRY,
) -> T:
    """Call ``fn()`` and retry it under ``config``; return its first successful result.

    ``config`` is a :class:`RetryPolicy` (see :func:`default_retry_policy`, used for
    ``None``) or a sampling ``RetryConfig`` (translated by ``RetryPolicy.from_retry_config``).
    Before each retry the telemetry event ``event`` (default ``tinkex.http.retry``, schema
    ``tinkex.telemetry.RetryMetadata``) is emitted: ``request`` is ``name`` (so
    ``name="POST /api/v1/x"`` is attributed to that endpoint by :mod:`tinkex.metrics`),
    plus ``name``, ``retry_count`` and ``error_type`` for older handlers. Around each attempt
    ``tinkex.retry.attempt.start`` / ``.stop`` are emitted, and ``.failed`` when it gives up
    (Elixir Tinkex's ``[:tinkex, :retry, :attempt, ...]``). With ``breaker``,
    every attempt goes through it and an open circuit stops the retries at once.
    ``sleep`` and ``rng`` are injectable for tests.

    >>> with_retry(lambda: 42, default_retry_policy(max_retries=1))
    42

    Raises:
        The last exception when attempts or time run out, or the first non-retryable one.
    """
    policy = _for_with_retry(_as_policy(config))
    attempt: Callable[[], T] = fn
    if breaker is not None:
        guard = breaker
        attempt = lambda: guard.call(fn)  # noqa: E731

    def legacy_keys(exc: BaseException, attempt_number: int) -> dict[str, Any]:
        return {"name": name, "retry_count": attempt_number, "error_type": type(exc).__name__}

    return policy.run(
        attempt,
        describe=name,
        sleep=sleep,
        rng=rng,
        event=event,
        event_extra=legacy_keys,
        attempt_events=True,
    )
