"""The one retry policy type: a value that answers "retry? after how long?" for an outcome.

A :class:`RetryPolicy` says *which* failures are retried, *how many times / how long*, and *how
long to wait* between attempts; :meth:`RetryPolicy.decide` turns one failure and the progress so
far (a :class:`RetryState`) into a :class:`RetryDecision`. It is a frozen value you can print,
compare and test. Every retry loop of tinkex asks such a value (docs/protocol.md, "Retries"):

* :func:`http_retry_policy` — layer 1, applied by ``Transport.request`` to each call:
  connection errors/timeouts and 408/409/429/5xx (or whatever ``x-should-retry`` says),
  ``Retry-After``/``retry-after-ms`` when 0 < v <= 60 s, else ``min(0.5 * 2**n, 10) * U(0.75, 1)``.
* :func:`holder_retry_policy` — layer 2, wrapped by the client holder around whole operations:
  while less than 300 s have elapsed, retry timeouts/connection errors and 408/409/429/5xx,
  sleeping ``min(2**n, 30)`` s; a 402 pauses 5 s without counting, for up to 3600 s.
* :func:`poll_retry_policy` — the back-off rows of the ``retrieve_future`` poller (429 and
  connection errors: ``min(2**n, 30)`` s, 402 pauses).
* :func:`sample_submission_policy` and :meth:`RetryPolicy.from_retry_config` — the two loops of
  a sample: resend the same ``seq_id`` on 429/402, and resubmit with a new one per ``RetryConfig``.
* :data:`NO_RETRY` — one attempt (retrieve_future, heartbeats, telemetry ...).

:meth:`RetryPolicy.run` / :meth:`RetryPolicy.call` / :meth:`RetryPolicy.arun` apply a policy
through ``tinkex._transport.retry_loop.RetryLoop`` (injectable sleep and clock, a stop event, a
``tinkex.http.retry`` event per retry). For code that drives
tenacity itself, ``policy.stop`` / ``policy.wait`` / ``policy.retry`` are the same rules as
tenacity pieces (without the 402 pause, which tenacity cannot express). Importing this module
does not import tenacity.

Example::

    >>> http_retry_policy(max_retries=3)
    RetryPolicy(name='http', max_retries=3, ...)
    >>> holder_retry_policy().call(fetch_config)   # retries fetch_config() per layer 2
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from tinkex._exceptions import APIConnectionError, APIStatusError, BillingError
from tinkex._transport._response import parse_retry_after
from tinkex._transport.diagnose import PermanentConnectionError
from tinkex._transport.retry_loop import RetryLoop
from tinkex.telemetry import HTTP_RETRY

if TYPE_CHECKING:
    from tenacity.retry import retry_base
    from tenacity.stop import stop_base
    from tenacity.wait import wait_base

    from tinkex.lib.retry_handler import RetryConfig

__all__ = [
    "BILLING_PAUSE",
    "HTTP_DEFAULT",
    "NO_RETRY",
    "RETRYABLE_STATUSES",
    "RetryDecision",
    "RetryPolicy",
    "RetryState",
    "holder_retry_policy",
    "http_retry_policy",
    "poll_retry_policy",
    "sample_submission_policy",
]

T = TypeVar("T")

#: Statuses every layer treats as transient (plus any 5xx).
RETRYABLE_STATUSES: frozenset[int] = frozenset({408, 409, 429})

#: How long a 402 (billing) answer pauses before the same request is sent again.
BILLING_PAUSE = 5.0

#: How long continuous 402s may pause before the error propagates (the server's
#: ``billing_exception_max_pause_duration_sec`` default).
BILLING_MAX_PAUSE = 3600.0


class _HttpDefault:
    """Sentinel type of :data:`HTTP_DEFAULT`."""

    def __repr__(self) -> str:
        return "HTTP_DEFAULT"


#: ``Transport.request(retry=HTTP_DEFAULT)``: the transport's layer-1 policy
#: (``http_retry_policy(settings.max_retries)``).
HTTP_DEFAULT: Any = _HttpDefault()


def _response_headers(exc: BaseException) -> Any:
    response = getattr(exc, "response", None)
    return getattr(response, "headers", None)


def _is_billing(exc: BaseException) -> bool:
    return isinstance(exc, BillingError) or (
        isinstance(exc, APIStatusError) and exc.status_code == 402
    )


def _statuses(values: Iterable[int]) -> frozenset[int]:
    return frozenset(values)


def _non_negative(instance: Any, attribute: Any, value: float | None) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{type(instance).__name__}.{attribute.name} must be >= 0, got {value}")


def _unit_interval(instance: Any, attribute: Any, value: float) -> None:
    if not 0 <= value <= 1:
        raise ValueError(
            f"{type(instance).__name__}.{attribute.name} must be in [0, 1], got {value}"
        )


@attrs.frozen
class RetryState:
    """Progress of one retry loop, as :meth:`RetryPolicy.decide` sees it.

    Attributes:
        retries: retries granted so far (402 pauses do not count); also the back-off exponent.
        started: clock reading when the first attempt started (for ``max_elapsed``).
        billing_since: clock reading of the first 402 of the current run of 402s, if any.
    """

    retries: int = 0
    started: float = 0.0
    billing_since: float | None = None


@attrs.frozen
class RetryDecision:
    """What to do after a failure: retry after ``delay`` seconds, or stop.

    Attributes:
        retry: whether to try again.
        delay: seconds to wait first (0 when not retrying).
        state: the loop's state for the next attempt.
        reason: ``"retry"``, ``"billing"`` (a 402 pause, not counted), ``"not_retryable"``
            or ``"exhausted"`` (retryable, but the attempt, time or billing budget is spent).
    """

    retry: bool
    delay: float
    state: RetryState
    reason: str

    @property
    def exhausted(self) -> bool:
        """The failure was retryable but the budget is spent."""
        return self.reason == "exhausted"


@attrs.frozen(slots=False)
class RetryPolicy:
    """What to retry, how often, and how long to wait — a printable, comparable value.

    Attributes:
        name: label used in telemetry and ``repr`` (``"http"``, ``"holder"``, ``"none"`` ...).
        max_retries: retries after the first attempt; ``None`` means unbounded (then
            ``max_elapsed`` bounds the loop).
        max_elapsed: stop retrying once this many seconds have passed since the first
            attempt started; waits are clipped so they never run past it.
        retry_statuses: HTTP statuses that are retried (any ``>= 500`` too, see below).
        retry_server_errors: retry every 5xx.
        retry_connection_errors: retry :class:`APIConnectionError` (incl. timeouts).
        retry_exceptions: other exception types that are retried (not consulted for HTTP
            status errors, which the status rules decide).
        retry_if: extra predicate; an exception the rules above reject is retried when it
            returns ``True``.
        never_retry: exception types that are never retried, whatever the other rules say.
        honor_should_retry: an ``x-should-retry: true|false`` response header overrides the
            status-based decision (layer 1 only).
        honor_retry_after: wait what ``Retry-After``/``retry-after-ms`` says when 0 < v <= 60 s.
        retry_empty_bad_request: treat a 400 with an empty body (a proxy artefact) like a
            connection error.
        backoff_initial: first back-off in seconds; retry ``n`` (0-based) waits
            ``min(backoff_initial * backoff_multiplier**n, backoff_max)``, then jitter.
        backoff_multiplier: growth factor of the back-off.
        backoff_max: cap of the back-off.
        jitter: the back-off is multiplied by ``U(1 - jitter, 1)``, or by
            ``U(1 - jitter, 1 + jitter)`` with ``symmetric_jitter``.
        symmetric_jitter: see ``jitter``.
        billing_pause: when set, a 402 waits this long and repeats the call without counting
            as a retry, until ``billing_max_pause`` seconds of continuous 402s.
        billing_max_pause: see ``billing_pause``.

    Raises:
        ValueError: a negative count or duration, or ``jitter`` outside ``[0, 1]``; the
            message names the field and the value.
    """

    name: str
    max_retries: int | None = attrs.field(default=10, validator=_non_negative)
    max_elapsed: float | None = attrs.field(default=None, validator=_non_negative)
    retry_statuses: frozenset[int] = attrs.field(default=RETRYABLE_STATUSES, converter=_statuses)
    retry_server_errors: bool = True
    retry_connection_errors: bool = True
    retry_exceptions: tuple[type[BaseException], ...] = attrs.field(default=(), converter=tuple)
    retry_if: Callable[[BaseException], bool] | None = None
    never_retry: tuple[type[BaseException], ...] = attrs.field(default=(), converter=tuple)
    honor_should_retry: bool = False
    honor_retry_after: bool = False
    retry_empty_bad_request: bool = False
    backoff_initial: float = attrs.field(default=0.5, validator=_non_negative)
    backoff_multiplier: float = attrs.field(default=2.0, validator=_non_negative)
    backoff_max: float = attrs.field(default=10.0, validator=_non_negative)
    jitter: float = attrs.field(default=0.25, validator=_unit_interval)
    symmetric_jitter: bool = False
    billing_pause: float | None = attrs.field(default=None, validator=_non_negative)
    billing_max_pause: float = attrs.field(default=BILLING_MAX_PAUSE, validator=_non_negative)

    # ---- decisions -------------------------------------------------------------------------

    def is_retryable(self, exc: BaseException) -> bool:
        """Whether ``exc`` is a transient failure under this policy (ignores the budget)."""
        if self.never_retry and isinstance(exc, self.never_retry):
            return False
        if isinstance(exc, PermanentConnectionError):
            return False  # retrying cannot fix it (tinkex._transport.diagnose)
        if isinstance(exc, APIStatusError):
            verdict = self._status_verdict(exc)
            if verdict is not None:
                return verdict
        elif (isinstance(exc, APIConnectionError) and self.retry_connection_errors) or (
            self.retry_exceptions and isinstance(exc, self.retry_exceptions)
        ):
            return True
        return self.retry_if is not None and bool(self.retry_if(exc))

    def _status_verdict(self, exc: APIStatusError) -> bool | None:
        """True/False when the status rules decide, None to let ``retry_if`` have a say."""
        if self.honor_should_retry:
            headers = _response_headers(exc)
            forced = headers.get("x-should-retry") if headers is not None else None
            if forced == "true":
                return True
            if forced == "false":
                return False
        status = exc.status_code
        if status in self.retry_statuses or (status >= 500 and self.retry_server_errors):
            return True
        if status == 400 and self.retry_empty_bad_request and self.retry_connection_errors:
            return not exc.body or None
        return None

    def backoff(self, retry_index: int) -> float:
        """The back-off before retry ``retry_index`` (0-based), before jitter."""
        return min(self.backoff_initial * (self.backoff_multiplier**retry_index), self.backoff_max)

    def retry_delay(
        self, exc: BaseException | None, retry_index: int, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before retry ``retry_index``: Retry-After if honoured, else back-off."""
        if self.honor_retry_after and exc is not None:
            requested = parse_retry_after(_response_headers(exc))
            if requested is not None:
                return requested
        delay = self.backoff(retry_index)
        if self.jitter:
            high = 1.0 + self.jitter if self.symmetric_jitter else 1.0
            delay *= (rng or random).uniform(1.0 - self.jitter, high)
        return max(0.0, delay)

    def decide(
        self,
        exc: BaseException,
        state: RetryState,
        now: float,
        rng: random.Random | None = None,
    ) -> RetryDecision:
        """Retry or not, and after how long, after ``exc`` ended an attempt at time ``now``."""
        if self.billing_pause is not None and _is_billing(exc):
            since = now if state.billing_since is None else state.billing_since
            if now - since < self.billing_max_pause:
                paused = attrs.evolve(state, billing_since=since)
                return RetryDecision(True, self.billing_pause, paused, "billing")
            return RetryDecision(False, 0.0, state, "exhausted")
        state = attrs.evolve(state, billing_since=None)
        if not self.is_retryable(exc):
            return RetryDecision(False, 0.0, state, "not_retryable")
        elapsed = now - state.started
        if (self.max_retries is not None and state.retries >= self.max_retries) or (
            self.max_elapsed is not None and elapsed >= self.max_elapsed
        ):
            return RetryDecision(False, 0.0, state, "exhausted")
        delay = self.retry_delay(exc, state.retries, rng)
        if self.max_elapsed is not None:
            delay = max(0.0, min(delay, self.max_elapsed - elapsed))
        return RetryDecision(True, delay, attrs.evolve(state, retries=state.retries + 1), "retry")

    # ---- the loop --------------------------------------------------------------------------

    def run(
        self,
        attempt: Callable[[], T],
        *,
        describe: str | None = None,
        sleep: Callable[[float], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
        stop_event: threading.Event | None = None,
        rng: random.Random | None = None,
        event: str | None = HTTP_RETRY,
        event_extra: Callable[[BaseException, int], Mapping[str, Any]] | None = None,
        give_up: Callable[[BaseException], BaseException] | None = None,
        attempt_events: bool = False,
    ) -> T:
        """Call ``attempt()`` until it returns, retrying per this policy; returns its result.

        Args:
            describe: what is retried, for telemetry and logs (e.g. ``"POST /api/v1/x"``).
            sleep: how to wait (default: ``stop_event.wait`` when given, else ``time.sleep``).
            clock: monotonic clock for the elapsed-time and billing budgets.
            stop_event: when set, the loop raises ``concurrent.futures.CancelledError`` before
                the next attempt (and default waits end at once).
            rng: random source of the jitter.
            event: telemetry event emitted before each counted retry (``None``: none).
            attempt_events: also emit ``tinkex.retry.attempt.start`` / ``.stop`` around each
                attempt and ``.failed`` when the loop gives up (``with_retry`` does; the HTTP
                layer has its own per-attempt ``tinkex.http.request.*`` events).
            event_extra: extra metadata for that event, from ``(exc, attempt_number)``.
            give_up: builds the exception raised (from the last one) when the budget is
                spent; by default the last exception itself propagates.

        Raises:
            The last exception when it is not retryable or the budget is spent.
            concurrent.futures.CancelledError: ``stop_event`` was set.
        """
        loop = RetryLoop(
            self,
            describe=describe,
            sleep=sleep,
            clock=clock,
            stop_event=stop_event,
            rng=rng,
            event=event,
            event_extra=event_extra,
            give_up=give_up,
            attempt_events=attempt_events,
        )
        return loop.run(attempt, RetryState(started=clock()))

    def arun(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        describe: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        stop_event: threading.Event | None = None,
        give_up: Callable[[BaseException], BaseException] | None = None,
    ) -> Coroutine[Any, Any, T]:
        """:meth:`run` for a coroutine: ``await attempt()`` until it returns, waits awaited.

        The same decisions (:meth:`decide`), telemetry event, ``give_up`` and published
        deadline (for the retry warnings); the waits are ``asyncio.sleep`` (cancelling the
        task ends them), and ``stop_event`` is checked before every attempt. Returns the
        loop's coroutine itself (await it), so no frame of this method stays suspended
        with it: one less per sample in flight.

        Raises:
            The last exception when it is not retryable or the budget is spent.
            concurrent.futures.CancelledError: ``stop_event`` was set.
        """
        loop = RetryLoop(
            self, describe=describe, clock=clock, stop_event=stop_event, give_up=give_up
        )
        return loop.arun(attempt, RetryState(started=clock()))

    def call(
        self,
        fn: Callable[..., T],
        *args: Any,
        sleep: Callable[[float], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
        stop_event: threading.Event | None = None,
        describe: str | None = None,
        **kwargs: Any,
    ) -> T:
        """``run(lambda: fn(*args, **kwargs), ...)``: retry one call per this policy."""
        return self.run(
            functools.partial(fn, *args, **kwargs),
            describe=describe,
            sleep=sleep,
            clock=clock,
            stop_event=stop_event,
        )

    # ---- tenacity pieces (built lazily, for driving tenacity yourself) ---------------------

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
        """tenacity wait: :meth:`retry_delay` of the attempt's exception."""
        return _build_wait(self)

    # ---- construction ----------------------------------------------------------------------

    @classmethod
    def from_retry_config(
        cls, config: RetryConfig | Any, *, enabled: bool = True, stuck_detection: bool = True
    ) -> RetryPolicy:
        """The policy of a sampling ``RetryConfig`` (``tinkex.lib.retry_handler``).

        Retries the config's ``retryable_exceptions`` and 408/409/429/5xx, waiting
        ``min(retry_delay_base * 2**n, retry_delay_max) * U(1 - j, 1 + j)`` (``j`` =
        ``jitter_factor``), without an attempt limit, for at most ``progress_timeout`` s when
        stuck detection is on. ``enabled``/``stuck_detection`` are the server's switches
        (``sample_no_retries``, ``sample_enable_stuck_detection``), and-ed with the config's.
        """
        retries_on = enabled and bool(getattr(config, "enable_retry_logic", True))
        stuck = stuck_detection and bool(getattr(config, "enable_stuck_detection", True))
        timeout = getattr(config, "progress_timeout", None)
        return cls(
            name="sample",
            max_retries=None if retries_on else 0,
            max_elapsed=float(timeout) if stuck and timeout is not None else None,
            retry_connection_errors=False,
            retry_exceptions=tuple(getattr(config, "retryable_exceptions", ())),
            backoff_initial=float(getattr(config, "retry_delay_base", 0.5)),
            backoff_max=float(getattr(config, "retry_delay_max", 10.0)),
            jitter=float(getattr(config, "jitter_factor", 0.25)),
            symmetric_jitter=True,
        )


def _build_wait(policy: RetryPolicy) -> wait_base:
    import tenacity

    class wait_server_or_backoff(tenacity.wait.wait_base):
        """Server-requested delay (Retry-After) when honoured, else the jittered back-off."""

        def __call__(self, retry_state: tenacity.RetryCallState) -> float:
            outcome = retry_state.outcome
            exc = outcome.exception() if outcome is not None else None
            return policy.retry_delay(exc, retry_state.attempt_number - 1)

        def __repr__(self) -> str:
            server = "Retry-After or " if policy.honor_retry_after else ""
            high = f"{1 + policy.jitter:g}" if policy.symmetric_jitter else "1"
            jitter = f" * U({1 - policy.jitter:g}, {high})" if policy.jitter else ""
            return (
                f"<wait {server}min({policy.backoff_initial:g} * "
                f"{policy.backoff_multiplier:g}^n, {policy.backoff_max:g}){jitter}>"
            )

    return wait_server_or_backoff()


def http_retry_policy(max_retries: int = 10) -> RetryPolicy:
    """Layer-1 policy of every HTTP call (docs/protocol.md, "Retries", layer 1).

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
    billing_max_pause: float = BILLING_MAX_PAUSE,
    billing_pause: float = BILLING_PAUSE,
) -> RetryPolicy:
    """Layer-2 policy the client holder wraps around operations (docs/protocol.md, layer 2).

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


@functools.lru_cache(maxsize=32)
def poll_retry_policy(billing_max_pause: float = BILLING_MAX_PAUSE) -> RetryPolicy:
    """The back-off rows of the ``retrieve_future`` poller (docs/protocol.md, "Futures").

    429s and connection errors wait ``min(2**n, 30)`` s without a limit (``n`` counts them in a
    row); a 402 pauses 5 s, for up to ``billing_max_pause`` s of continuous 402s. Every other
    answer is decided by the poller's own table.
    """
    return _throttled(
        "poll", billing_max_pause, BILLING_PAUSE, backoff_initial=1.0, backoff_max=30.0
    )


@functools.lru_cache(maxsize=32)
def sample_submission_policy(
    billing_max_pause: float = BILLING_MAX_PAUSE, *, billing_pause: float = BILLING_PAUSE
) -> RetryPolicy:
    """How one ``asample`` submission is resent with the *same* ``seq_id``.

    A 429 is resent at once (the transport's per-key rate limiter holds it until the server's
    back-off window has passed); a 402 pauses ``billing_pause`` s, for up to
    ``billing_max_pause`` s. Anything else goes to the sample's ``RetryConfig`` policy.
    """
    return _throttled(
        "sample_submission",
        billing_max_pause,
        billing_pause,
        backoff_initial=0.0,
        retry_connection_errors=False,
    )


def _throttled(
    name: str,
    billing_max_pause: float,
    billing_pause: float,
    *,
    backoff_initial: float,
    backoff_max: float = 10.0,
    retry_connection_errors: bool = True,
) -> RetryPolicy:
    """A policy for throttling answers only: 429s (and connection errors, unless told not
    to) retried without a limit and without jitter, 402s paused; any other failure is the
    caller's."""
    return RetryPolicy(
        name=name,
        max_retries=None,
        retry_statuses=frozenset({429}),
        retry_server_errors=False,
        retry_connection_errors=retry_connection_errors,
        backoff_initial=backoff_initial,
        backoff_max=backoff_max,
        jitter=0.0,
        billing_pause=billing_pause,
        billing_max_pause=billing_max_pause,
    )


#: A single attempt, no retries (retrieve_future, heartbeats, telemetry ...).
NO_RETRY = RetryPolicy(name="none", max_retries=0)
