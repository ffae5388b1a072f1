"""Resilience helpers usable around any call: circuit breakers and retries with telemetry.

>>> from tinkex.resilience import CircuitBreaker, default_retry_policy, with_retry
>>> breaker = CircuitBreaker("POST /api/v1/asample", failure_threshold=3, reset_timeout=10)
>>> with_retry(lambda: "ok", default_retry_policy(max_retries=2), breaker=breaker)
'ok'

:class:`RetryPolicy` is the SDK's one retry policy type (the HTTP layer, the client holder,
the sampling retries and the poller use it too); ``BackoffPolicy`` is its deprecated former
spelling. The user-facing sampling ``RetryConfig`` lives in :mod:`tinkex.lib.retry_handler`;
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
    RetryPolicy,
    default_retry_policy,
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
    "RetryPolicy",
    "default_is_failure",
    "default_retry_policy",
    "with_retry",
]
