"""Resilience helpers usable around any call: circuit breakers and retries with telemetry.

>>> from tinkex.resilience import CircuitBreaker, BackoffPolicy, with_retry
>>> breaker = CircuitBreaker("POST /api/v1/asample", failure_threshold=3, reset_timeout=10)
>>> with_retry(lambda: breaker.call(lambda: "ok"), BackoffPolicy(max_attempts=3))
'ok'

The user-facing sampling ``RetryConfig`` lives in :mod:`tinkex.lib.retry_handler`;
:func:`with_retry` accepts it as its ``config`` too.
"""

from tinkex.resilience._breaker import (
    CircuitBreaker,
    CircuitBreakerRegistry,
    CircuitOpenError,
    CircuitState,
    default_is_failure,
)
from tinkex.resilience._retry import (
    DEFAULT_RETRY_ON,
    DEFAULT_RETRY_STATUSES,
    BackoffPolicy,
    with_retry,
)

__all__ = [
    "DEFAULT_RETRY_ON",
    "DEFAULT_RETRY_STATUSES",
    "BackoffPolicy",
    "CircuitBreaker",
    "CircuitBreakerRegistry",
    "CircuitOpenError",
    "CircuitState",
    "default_is_failure",
    "with_retry",
]
