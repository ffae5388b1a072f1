"""Retry policies as values (wire protocol §13, layers 1 and 2).

A :class:`RetryPolicy` says *which* failures are retried, *how many times / how long*, and *how
long to wait* between attempts. It is a frozen value you can print, compare and test; its
decisions are made by tenacity pieces (``stop``, ``wait``, ``retry``) built from its fields on
first use, so importing this module does not import tenacity.

Three policies cover the SDK:

* :func:`http_retry_policy` — layer 1, applied by :meth:`Transport.request` to each call:
  connection errors/timeouts and 408/409/429/5xx (or whatever ``x-should-retry`` says),
  ``Retry-After``/``retry-after-ms`` when 0 < v <= 60 s, else ``min(0.5 * 2**n, 10) * U(0.75, 1)``.
* :func:`holder_retry_policy` — layer 2, wrapped by the client holder around whole operations:
  while less than 300 s have elapsed, retry timeouts/connection errors and 408/409/429/5xx,
  sleeping ``min(2**n, 30)`` s; a 402 pauses 5 s without counting, for up to 3600 s.
* :data:`NO_RETRY` — one attempt (retrieve_future, asample, heartbeats ...).

Example::

    >>> http_retry_policy(max_retries=3)
    RetryPolicy(name='http', max_retries=3, ...)
    >>> holder_retry_policy().call(fetch_config)   # retries fetch_config() per layer 2
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from tinkex._exceptions import APIConnectionError, APIStatusError, BillingError
from tinkex.telemetry import HTTP_RETRY, emit, has_handlers

if TYPE_CHECKING:
    import tenacity
    from tenacity.retry import retry_base
    from tenacity.stop import stop_base
    from tenacity.wait import wait_base

__all__ = [
    "HTTP_DEFAULT",
    "NO_RETRY",
    "RETRYABLE_STATUSES",
    "RetryPolicy",
    "holder_retry_policy",
    "http_retry_policy",
    "parse_retry_after",
]

T = TypeVar("T")

logger = logging.getLogger("tinkex.retry")

#: Statuses every layer treats as transient (plus any 5xx).
RETRYABLE_STATUSES: frozenset[int] = frozenset({408, 409, 429})

#: Retry-After values are honoured only inside (0, 60] seconds.
_MAX_RETRY_AFTER = 60.0

RETRY_EVENT = HTTP_RETRY


class _HttpDefault:
    """Sentinel type of :data:`HTTP_DEFAULT`."""

    def __repr__(self) -> str:
        return "HTTP_DEFAULT"


#: ``Transport.request(retry=HTTP_DEFAULT)``: the transport's layer-1 policy
#: (``http_retry_policy(settings.max_retries)``).
HTTP_DEFAULT: Any = _HttpDefault()


def parse_retry_after(headers: Any, *, now: float | None = None) -> float | None:
    """Seconds a server asked us to wait, from ``retry-after-ms`` or ``retry-after``.

    ``retry-after-ms`` wins; ``retry-after`` may be seconds or an HTTP date. Returns ``None``
    when absent, unparsable, or outside ``0 < v <= 60`` seconds (wire protocol §2).
    """
    if headers is None:
        return None
    value: float | None = None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            value = float(raw_ms) / 1000.0
        except ValueError:
            value = None
    if value is None:
        raw = headers.get("retry-after")
        if raw:
            try:
                value = float(raw)
            except ValueError:
                import email.utils  # rare path; keeps ~10 ms off import time

                try:
                    when = email.utils.parsedate_to_datetime(raw)
                except (TypeError, ValueError, IndexError):
                    return None
                current = time.time() if now is None else now
                value = when.timestamp() - current
    if value is None or not (0 < value <= _MAX_RETRY_AFTER):
        return None
    return value


def _response_headers(exc: BaseException) -> Any:
    response = getattr(exc, "response", None)
    return getattr(response, "headers", None)


def _is_billing(exc: BaseException) -> bool:
    return isinstance(exc, BillingError) or (
        isinstance(exc, APIStatusError) and exc.status_code == 402
    )


@attrs.frozen(slots=False)
class RetryPolicy:
    """What to retry, how often, and how long to wait — a printable, comparable value.

    Attributes:
        name: label used in telemetry and ``repr`` (``"http"``, ``"holder"``, ``"none"``).
        max_retries: retries after the first attempt; ``None`` means unbounded (then
            ``max_elapsed`` bounds the loop).
        max_elapsed: stop retrying once this many seconds have passed since the first
            attempt started; sleeps are clipped so they never run past it.
        retry_statuses: HTTP statuses that are retried (any ``>= 500`` too, see below).
        retry_server_errors: retry every 5xx.
        retry_connection_errors: retry :class:`APIConnectionError` (incl. timeouts).
        honor_should_retry: an ``x-should-retry: true|false`` response header overrides the
            status-based decision (layer 1 only).
        honor_retry_after: wait what ``Retry-After``/``retry-after-ms`` says when 0 < v <= 60 s.
        retry_empty_bad_request: treat a 400 with an empty body (a proxy artefact) like a
            connection error.
        backoff_initial: first back-off in seconds; attempt ``n`` waits
            ``min(backoff_initial * 2**n, backoff_max)``.
        backoff_max: cap of the exponential back-off.
        jitter: the back-off is multiplied by ``U(1 - jitter, 1)``.
        billing_pause: when set, a 402 sleeps this long and repeats the call without counting
            as a retry, until ``billing_max_pause`` seconds of continuous 402s.
        billing_max_pause: see ``billing_pause``.
    """

    name: str
    max_retries: int | None = 10
    max_elapsed: float | None = None
    retry_statuses: frozenset[int] = attrs.field(default=RETRYABLE_STATUSES, converter=frozenset)
    retry_server_errors: bool = True
    retry_connection_errors: bool = True
    honor_should_retry: bool = False
    honor_retry_after: bool = False
    retry_empty_bad_request: bool = False
    backoff_initial: float = 0.5
    backoff_max: float = 10.0
    jitter: float = 0.25
    billing_pause: float | None = None
    billing_max_pause: float = 3600.0

    # ---- decisions -------------------------------------------------------------------------

    def is_retryable(self, exc: BaseException) -> bool:
        """Whether ``exc`` is a transient failure under this policy (ignores attempt budget)."""
        if isinstance(exc, APIStatusError):
            if self.honor_should_retry:
                headers = _response_headers(exc)
                if headers is not None:
                    forced = headers.get("x-should-retry")
                    if forced == "true":
                        return True
                    if forced == "false":
                        return False
            status = exc.status_code
            if status in self.retry_statuses:
                return True
            if status >= 500 and self.retry_server_errors:
                return True
            if status == 400 and self.retry_empty_bad_request and self.retry_connection_errors:
                return not exc.body
            return False
        if isinstance(exc, APIConnectionError):
            return self.retry_connection_errors
        return False

    def backoff(self, retry_index: int) -> float:
        """Back-off before retry ``retry_index`` (0-based), jitter applied."""
        delay = min(self.backoff_initial * (2.0**retry_index), self.backoff_max)
        if self.jitter:
            delay *= random.uniform(1.0 - self.jitter, 1.0)
        return delay

    # ---- tenacity pieces (built lazily) ----------------------------------------------------

    @functools.cached_property
    def stop(self) -> stop_base:
        """tenacity stop condition: ``stop_after_attempt`` and/or ``stop_after_delay``."""
        import tenacity

        pieces: list[stop_base] = []
        if self.max_retries is not None:
            pieces.append(tenacity.stop_after_attempt(self.max_retries + 1))
        if self.max_elapsed is not None:
            pieces.append(tenacity.stop_after_delay(self.max_elapsed))
        if not pieces:
            return tenacity.stop_never
        return functools.reduce(lambda a, b: a | b, pieces)

    @functools.cached_property
    def retry(self) -> retry_base:
        """tenacity retry predicate: ``retry_if_exception(self.is_retryable)``."""
        import tenacity

        return tenacity.retry_if_exception(self.is_retryable)

    @functools.cached_property
    def wait(self) -> wait_base:
        """tenacity wait: server-requested delay if honoured, else jittered exponential."""
        return _build_wait(self)

    @functools.cached_property
    def _retrying(self) -> tenacity.Retrying:
        import tenacity

        return tenacity.Retrying(stop=self.stop, wait=self.wait, retry=self.retry)

    # ---- the loop --------------------------------------------------------------------------

    def call(
        self,
        fn: Callable[..., T],
        *args: Any,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        stop_event: threading.Event | None = None,
        describe: str | None = None,
        **kwargs: Any,
    ) -> T:
        """Call ``fn(*args, **kwargs)``, retrying per this policy; returns its result.

        Args:
            sleep: how to wait (default: ``stop_event.wait`` when given, else ``time.sleep``);
                tests inject a fake.
            clock: monotonic clock for the elapsed-time budget.
            stop_event: when set, the loop raises ``concurrent.futures.CancelledError`` before
                the next attempt (and default sleeps wake up immediately).
            describe: what is being retried, for telemetry (e.g. ``"POST /api/v1/x"``).

        Raises:
            The last exception of ``fn`` when it is not retryable or the budget is spent.
            concurrent.futures.CancelledError: ``stop_event`` was set.
        """
        start = clock()
        state: Any = None
        billing_since: float | None = None
        while True:
            if stop_event is not None and stop_event.is_set():
                raise CancelledError(f"{describe or 'call'} cancelled: client is closing")
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                now = clock()
                if self.billing_pause is not None and _is_billing(exc):
                    if billing_since is None:
                        billing_since = now
                    if now - billing_since < self.billing_max_pause:
                        self._sleep(self.billing_pause, sleep, stop_event)
                        continue
                    raise
                billing_since = None
                if self.max_retries == 0:
                    raise
                if state is None:
                    import tenacity

                    state = tenacity.RetryCallState(self._retrying, None, (), {})
                    state.start_time = start
                else:
                    state.prepare_for_next_attempt()
                state.set_exception((type(exc), exc, exc.__traceback__))
                state.outcome_timestamp = now  # our (injectable) clock, not tenacity's
                if not self.retry(state) or self.stop(state):
                    raise
                delay = self.wait(state)
                if self.max_elapsed is not None:
                    delay = max(0.0, min(delay, self.max_elapsed - (now - start)))
                if has_handlers(RETRY_EVENT):
                    method, _, path = (describe or "").partition(" ")
                    emit(
                        RETRY_EVENT,
                        {"delay": delay, "attempt": float(state.attempt_number)},
                        {
                            "policy": self.name,
                            "request": describe,
                            "method": method or None,
                            "path": path or None,
                            "error": type(exc).__name__,
                            "status": getattr(exc, "status_code", None),
                        },
                    )
                logger.debug(
                    "%s: retrying %s after %s (attempt %d) in %.2f s",
                    self.name,
                    describe or "call",
                    type(exc).__name__,
                    state.attempt_number,
                    delay,
                )
                self._sleep(delay, sleep, stop_event)

    @staticmethod
    def _sleep(
        seconds: float,
        sleep: Callable[[float], None] | None,
        stop_event: threading.Event | None,
    ) -> None:
        if sleep is not None:
            sleep(seconds)
        elif stop_event is not None:
            stop_event.wait(seconds)
        elif seconds > 0:
            time.sleep(seconds)


def _build_wait(policy: RetryPolicy) -> wait_base:
    import tenacity

    class wait_server_or_backoff(tenacity.wait.wait_base):
        """Server-requested delay (Retry-After) when honoured, else jittered exponential."""

        def __call__(self, retry_state: tenacity.RetryCallState) -> float:
            outcome = retry_state.outcome
            exc = outcome.exception() if outcome is not None else None
            if policy.honor_retry_after and exc is not None:
                requested = parse_retry_after(_response_headers(exc))
                if requested is not None:
                    return requested
            return policy.backoff(retry_state.attempt_number - 1)

        def __repr__(self) -> str:
            server = "Retry-After or " if policy.honor_retry_after else ""
            jitter = f" * U({1 - policy.jitter:g}, 1)" if policy.jitter else ""
            return (
                f"<wait {server}min({policy.backoff_initial:g} * 2^n, "
                f"{policy.backoff_max:g}){jitter}>"
            )

    return wait_server_or_backoff()


def http_retry_policy(max_retries: int = 10) -> RetryPolicy:
    """Layer-1 policy of every HTTP call (wire protocol §13.1).

    Retries connection errors/timeouts, 408/409/429/5xx and empty-bodied 400s, unless an
    ``x-should-retry`` header says otherwise; waits ``Retry-After``/``retry-after-ms`` when
    0 < v <= 60 s, else ``min(0.5 * 2**n, 10) * U(0.75, 1)``; at most ``max_retries`` retries.
    """
    if max_retries < 0:
        raise ValueError(f"http_retry_policy max_retries must be >= 0, got {max_retries}")
    return _http_policy_cached(max_retries)


@functools.lru_cache(maxsize=32)
def _http_policy_cached(max_retries: int) -> RetryPolicy:
    return RetryPolicy(
        name="http",
        max_retries=max_retries,
        honor_should_retry=True,
        honor_retry_after=True,
        retry_empty_bad_request=True,
        backoff_initial=0.5,
        backoff_max=10.0,
        jitter=0.25,
    )


def holder_retry_policy(
    max_elapsed: float = 300.0,
    *,
    billing_max_pause: float = 3600.0,
    billing_pause: float = 5.0,
) -> RetryPolicy:
    """Layer-2 policy the client holder wraps around operations (wire protocol §13.2).

    Retries timeouts/connection errors and 408/409/429/5xx while less than ``max_elapsed``
    seconds have passed, sleeping ``min(2**n, 30)`` s (clipped to the remaining budget); a 402
    sleeps ``billing_pause`` s and repeats without counting, until ``billing_max_pause`` s of
    continuous 402s (the server's ``billing_exception_max_pause_duration_sec``).
    """
    return RetryPolicy(
        name="holder",
        max_retries=None,
        max_elapsed=max_elapsed,
        backoff_initial=1.0,
        backoff_max=30.0,
        jitter=0.0,
        billing_pause=billing_pause,
        billing_max_pause=billing_max_pause,
    )


#: A single attempt, no retries (retrieve_future, asample, heartbeats, telemetry ...).
NO_RETRY = RetryPolicy(name="none", max_retries=0)
