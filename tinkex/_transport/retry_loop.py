"""The loop that applies a :class:`~tinkex._transport.retry.RetryPolicy` to a call.

:class:`RetryLoop` is what ``RetryPolicy.run`` / ``.arun`` / ``.call`` build: it calls the
attempt, asks the policy's ``decide`` after each failure, waits (an injectable sleep, the owner's
stop event, or ``asyncio.sleep``), emits a ``tinkex.http.retry`` event before each counted retry
(and, on request, the ``tinkex.retry.attempt.*`` events), and raises the last exception (or what
``give_up`` makes of it) when the policy says stop. The outermost time-bounded loop of a context
publishes when it gives up (:func:`retry_deadline`), for the "retrying for N more minutes"
warnings of the transports.
"""

from __future__ import annotations

import contextvars
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import CancelledError
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from tinkex.telemetry import (
    HTTP_RETRY,
    RETRY_ATTEMPT_FAILED,
    RETRY_ATTEMPT_START,
    RETRY_ATTEMPT_STOP,
    RetryAttemptFailedMetadata,
    RetryAttemptMetadata,
    RetryMetadata,
    emit,
    has_handlers,
)

if TYPE_CHECKING:
    from tinkex._transport.retry import RetryDecision, RetryPolicy, RetryState

__all__ = ["RetryLoop", "retry_deadline"]

T = TypeVar("T")

logger = logging.getLogger("tinkex.retry")

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "tinkex_retry_deadline", default=None
)


def retry_deadline() -> float | None:
    """``time.monotonic()`` at which the outermost time-bounded retry loop running in this
    context gives up, or None (for "retrying for N more minutes" warnings)."""
    return _DEADLINE.get()


def _publish_deadline(policy: RetryPolicy) -> contextvars.Token[float | None] | None:
    """Publish ``policy``'s deadline, unless an outer loop published one; the token that
    :func:`_withdraw_deadline` takes when the loop ends (None: nothing was published).

    A pair of calls around ``try``/``finally`` rather than a context manager: an ``arun``
    suspended in its attempt would hold the manager's generator meanwhile, once per sample in
    flight."""
    if policy.max_elapsed is not None and _DEADLINE.get() is None:
        return _DEADLINE.set(time.monotonic() + policy.max_elapsed)
    return None


def _withdraw_deadline(token: contextvars.Token[float | None] | None) -> None:
    if token is not None:
        _DEADLINE.reset(token)


def _attempts_watched() -> bool:
    """Whether any handler listens to the ``tinkex.retry.attempt.*`` events."""
    return (
        has_handlers(RETRY_ATTEMPT_START)
        or has_handlers(RETRY_ATTEMPT_STOP)
        or has_handlers(RETRY_ATTEMPT_FAILED)
    )


@attrs.define
class RetryLoop:
    """One application of ``policy``; see ``RetryPolicy.run`` for the meaning of each option."""

    policy: RetryPolicy
    describe: str | None = None
    sleep: Callable[[float], object] | None = None
    clock: Callable[[], float] = time.monotonic
    stop_event: threading.Event | None = None
    rng: random.Random | None = None
    event: str | None = HTTP_RETRY
    event_extra: Callable[[BaseException, int], Mapping[str, Any]] | None = None
    give_up: Callable[[BaseException], BaseException] | None = None
    attempt_events: bool = False

    def run(self, attempt: Callable[[], T], state: RetryState) -> T:
        """Call ``attempt()`` until it returns or the policy says stop."""
        token = _publish_deadline(self.policy)
        try:
            attempts = 0
            while True:
                self._check_stop()
                meta = self._attempt_started(attempts)
                began = self.clock()
                attempts += 1
                try:
                    result = attempt()
                except Exception as exc:
                    decision = self.policy.decide(exc, state, self.clock(), self.rng)
                    if not decision.retry:
                        self._attempt_failed(meta, exc, decision, began)
                        if decision.exhausted and self.give_up is not None:
                            raise self.give_up(exc) from exc
                        raise
                    self._retrying(exc, decision)
                    self._wait(decision.delay)
                    state = decision.state
                else:
                    if meta is not None and has_handlers(RETRY_ATTEMPT_STOP):
                        emit(RETRY_ATTEMPT_STOP, {"duration": self.clock() - began}, meta)
                    return result
        finally:
            _withdraw_deadline(token)

    async def arun(self, attempt: Callable[[], Awaitable[T]], state: RetryState) -> T:
        """:meth:`run` for a coroutine: waits are ``asyncio.sleep`` (task cancellation ends
        them); no attempt events. The deadline is published in the task's context."""
        import asyncio

        token = _publish_deadline(self.policy)
        try:
            while True:
                self._check_stop()
                try:
                    return await attempt()
                except Exception as exc:
                    decision = self.policy.decide(exc, state, self.clock())
                    if not decision.retry:
                        if decision.exhausted and self.give_up is not None:
                            raise self.give_up(exc) from exc
                        raise
                    self._retrying(exc, decision)
                    if decision.delay > 0:
                        await asyncio.sleep(decision.delay)
                    state = decision.state
        finally:
            _withdraw_deadline(token)

    def _check_stop(self) -> None:
        if self.stop_event is not None and self.stop_event.is_set():
            raise CancelledError(f"{self.describe or 'call'} cancelled: client is closing")

    def _wait(self, seconds: float) -> None:
        if self.sleep is not None:
            self.sleep(seconds)
        elif self.stop_event is not None:
            self.stop_event.wait(seconds)
        elif seconds > 0:
            time.sleep(seconds)

    def _attempt_started(self, attempts: int) -> RetryAttemptMetadata | None:
        """Emit ``tinkex.retry.attempt.start`` when asked for; the attempt's metadata."""
        if not (self.attempt_events and _attempts_watched()):
            return None
        meta: RetryAttemptMetadata = {
            "policy": self.policy.name,
            "request": self.describe,
            "attempt": attempts,
        }
        if has_handlers(RETRY_ATTEMPT_START):
            emit(RETRY_ATTEMPT_START, {"system_time": time.time()}, meta)
        return meta

    def _attempt_failed(
        self,
        meta: RetryAttemptMetadata | None,
        exc: BaseException,
        decision: RetryDecision,
        began: float,
    ) -> None:
        if meta is None or not has_handlers(RETRY_ATTEMPT_FAILED):
            return
        failed: RetryAttemptFailedMetadata = {
            **meta,
            "error": type(exc).__name__,
            "status": getattr(exc, "status_code", None),
            "reason": decision.reason,
        }
        emit(RETRY_ATTEMPT_FAILED, {"duration": self.clock() - began}, failed)

    def _retrying(self, exc: BaseException, decision: RetryDecision) -> None:
        """Report a counted retry (a 402 pause is not one): telemetry event and debug log."""
        if decision.reason != "retry":
            return
        attempt = decision.state.retries  # the number of the attempt that just failed
        event = self.event
        if event is not None and has_handlers(event):
            method, _, path = (self.describe or "").partition(" ")
            is_request = path.startswith("/")
            metadata: RetryMetadata = {
                "policy": self.policy.name,
                "request": self.describe,
                "method": method if is_request else None,
                "path": path if is_request else None,
                "error": type(exc).__name__,
                "status": getattr(exc, "status_code", None),
            }
            extra = self.event_extra(exc, attempt) if self.event_extra is not None else {}
            emit(event, {"delay": decision.delay, "attempt": float(attempt)}, {**metadata, **extra})
        logger.debug(
            "%s: retrying %s after %s (attempt %d) in %.2f s",
            self.policy.name,
            self.describe or "call",
            type(exc).__name__,
            attempt,
            decision.delay,
        )
