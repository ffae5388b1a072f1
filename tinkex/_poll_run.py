"""The side effects of one poll of a future: polls sent, waits, reports, reservations, decoding.

:class:`PollRun` is what both poll loops (``tinkex._poller``: ``poll_future`` on a thread,
``apoll_future`` on the I/O loop) do around the decision table (``tinkex._poll_table``): it
sends the ``retrieve_future`` polls, applies :func:`~tinkex._poll_table.next_action` and
reports its result (long-wait warning, queue states, ``tinkex.future.*`` events), waits and
reserves response bytes (waking on stop or cancellation), decodes the result, and reports how
polling ended (``tinkex.future.complete``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from tinkex._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    RequestFailedError,
    TinkerError,
)
from tinkex._futures import QueueState, QueueStateCallback, current_future
from tinkex._poll_pacing import NO_PACING, PollPacing
from tinkex._poll_table import (
    Fail,
    Finish,
    PollAction,
    PollState,
    Repoll,
    next_action,
    queue_report,
)
from tinkex._transport._response import Response
from tinkex._transport.retry import NO_RETRY, RetryPolicy
from tinkex.telemetry import (
    FUTURE_API_ERROR,
    FUTURE_COMPLETE,
    FUTURE_CONNECTION_ERROR,
    FUTURE_QUEUE_STATE,
    FUTURE_REQUEST_FAILED,
    FUTURE_VALIDATION_ERROR,
    FutureCompleteMeasurements,
    FutureCompleteMetadata,
    FutureErrorMetadata,
    QueueStateMetadata,
    emit,
    has_handlers,
)

if TYPE_CHECKING:
    from tinkex._transport import BytesSemaphore, Transport
    from tinkex._transport.aio import AsyncTransport

__all__ = ["RETRIEVE_FUTURE_PATH", "Answer", "PollRun"]

logger = logging.getLogger("tinkex.futures")

T = TypeVar("T")

#: A poll's answer: the 2xx response, or the error the transport raised.
Answer = Response | APIStatusError | APIConnectionError

RETRIEVE_FUTURE_PATH = "/api/v1/retrieve_future"
#: A wait this long (seconds) logs a warning naming the request and the server's last answer;
#: then again each time the wait has doubled (at most every ``WAIT_WARNING_MAX_INTERVAL``).
WAIT_WARNING_AFTER = 60.0
WAIT_WARNING_MAX_INTERVAL = 600.0
# Granularity at which a real sleep notices that its future was cancelled.
_CANCEL_CHECK_INTERVAL = 0.25
# How often a coroutine waiting for response bytes looks again.
_BYTES_RECHECK = 0.01


class _Failed(Exception):
    """Carries a :class:`Fail` action out of :meth:`PollRun.next` to the poll loop."""

    def __init__(self, action: Fail) -> None:
        super().__init__(action.error)
        self.outcome = action.outcome
        self.error = action.error
        self.cause = action.cause


@attrs.define(eq=False)
class PollRun:
    """The side effects of one poll loop: I/O, waits, reports, reservations, decoding.

    Attributes:
        request_id, request_type: the request polled for.
        stop: the owner's stop event.
        base_url: the server, named in errors.
        accept, timeout: the ``Accept`` header and read timeout of each poll.
        roundtrip: ``X-Tinker-Create-Promise-Roundtrip-Time`` of the first poll, if known.
        on_queue_state: observer of queue-state changes.
        response_bytes: budget for payloads announced by ``complete_metadata``.
        clock: monotonic clock (tests).
        sleep: how :meth:`wait` sleeps (tests); default waits wake on stop/cancellation.
        future: the future being computed (``current_future()``), whose cancellation stops
            polling; None for a coroutine, whose cancellation arrives as task cancellation.
        pacing: the pause before an immediate re-poll and the deadline (:mod:`tinkex._poll_pacing`).
    """

    request_id: str
    request_type: str
    stop: threading.Event
    base_url: str
    accept: str
    timeout: float
    roundtrip: float | None
    on_queue_state: QueueStateCallback | None
    response_bytes: BytesSemaphore | None
    clock: Callable[[], float]
    sleep: Callable[[float], None] | None = None
    future: Future[Any] | None = attrs.field(factory=current_future)
    pacing: PollPacing = NO_PACING
    at_once_in_a_row: int = attrs.field(default=0, init=False)
    reserved: int = attrs.field(default=0, init=False)
    polls: int = attrs.field(default=0, init=False)
    outcome: str = attrs.field(default="error", init=False)
    next_warning: float = attrs.field(default=WAIT_WARNING_AFTER, init=False)
    started: float = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.started = self.clock()

    @contextlib.contextmanager
    def running(
        self, cancelled: tuple[type[BaseException], ...] = (CancelledError,)
    ) -> Iterator[None]:
        """Around a poll loop: a :class:`Fail` raised as its error, and :meth:`finish` with
        the outcome (``"ok"``, ``"cancelled"`` on one of ``cancelled``, or the failure's)."""
        try:
            yield
        except cancelled:
            self.outcome = "cancelled"
            raise
        except _Failed as failed:
            self.outcome = failed.outcome
            raise failed.error from failed.cause
        finally:
            self.finish()

    def next(self, state: PollState, answer: Answer, policy: RetryPolicy) -> Repoll | Finish:
        """What to do after ``answer``, reported (long-wait warning, queue state, error
        event); a :class:`Fail` is raised as :class:`_Failed` (both poll loops share this)."""
        now = self.clock()
        self.warn_if_long(now - self.started, answer)
        action = next_action(
            state,
            answer,
            now=now,
            policy=policy,
            request_id=self.request_id,
            request_type=self.request_type,
        )
        if action.queue_state is not None:
            self.report(*action.queue_state)
        self.report_error(answer, action)
        if isinstance(action, Fail):
            raise _Failed(action)
        return action

    def pause(self, delay: float | None) -> float | None:
        """The wait before the next poll: the table's ``delay``, or, for a poll the table sends
        at once, the pacing's back-off (None: at once).

        Raises:
            PollTimeoutError: polling has gone on for the pacing's deadline.
        """
        deadline = self.pacing.deadline
        if deadline is not None and self.clock() - self.started >= deadline:
            self.outcome = "timeout"
            raise self.pacing.timeout_error(
                f"{self.request_id} ({self.request_type})", self.base_url
            )
        backoff = self.pacing.backoff
        if delay is not None or backoff is None:
            self.at_once_in_a_row = 0
            return delay
        seconds = float(backoff(self.at_once_in_a_row))
        self.at_once_in_a_row += 1
        return seconds if seconds > 0 else None

    def finished(self, decode: Callable[[Response], T], action: Finish) -> T:
        """The decoded result of a :class:`Finish`; the request is reported ``ACTIVE``."""
        result = self.decode(decode, action.response)
        self.outcome = "ok"
        self.report(QueueState.ACTIVE, None)
        return result

    def stopped(self) -> bool:
        return self.stop.is_set() or (self.future is not None and self.future.cancelled())

    def check(self) -> None:
        if self.stopped():
            raise CancelledError(
                f"polling of request {self.request_id} ({self.request_type}) was cancelled"
            )

    def retrieve(self, transport: Transport, state: PollState) -> Answer:
        """Send the poll of ``state``; the answer, or the HTTP/connection error it ended in."""
        self.polls += 1
        try:
            return transport.request(**self._poll(state), retry=NO_RETRY)
        except (APIStatusError, APIConnectionError) as exc:
            return exc

    async def aretrieve(self, transport: AsyncTransport, state: PollState) -> Answer:
        """:meth:`retrieve` over the asyncio transport."""
        self.polls += 1
        try:
            return await transport.request(**self._poll(state))
        except (APIStatusError, APIConnectionError) as exc:
            return exc

    def _poll(self, state: PollState) -> dict[str, Any]:
        """The request arguments of the poll sent with ``state`` (both transports)."""
        return {
            "method": "POST",
            "path": RETRIEVE_FUTURE_PATH,
            "json": self.body(state),
            "headers": self.headers(state),
            "timeout": self.timeout,
            "accept": self.accept,
        }

    def headers(self, state: PollState) -> dict[str, str]:
        """The headers of the poll sent with ``state``."""
        headers = {
            "X-Tinker-Request-Iteration": str(state.iteration),
            "X-Tinker-Request-Type": self.request_type,
            # The official SDK marks its polls so; servers may ignore it (docs/protocol.md).
            "X-Stainless-Raw-Response": "raw",
        }
        if state.iteration == 0 and self.roundtrip is not None:
            headers["X-Tinker-Create-Promise-Roundtrip-Time"] = str(self.roundtrip)
        return headers

    def body(self, state: PollState) -> dict[str, Any]:
        """The body of the poll sent with ``state``."""
        return {"request_id": self.request_id, "allow_metadata_only": state.allow_metadata_only}

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, waking early (with CancelledError) on stop or cancellation."""
        if self.sleep is not None:
            self.sleep(seconds)
        elif self.future is None:
            self.stop.wait(seconds)
        else:
            deadline = time.monotonic() + seconds
            while not self.stopped():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.stop.wait(min(remaining, _CANCEL_CHECK_INTERVAL))
        self.check()

    def reserve(self, nbytes: int) -> None:
        """Hold ``nbytes`` of the response budget until polling ends (no budget: no-op)."""
        if nbytes <= 0 or self.response_bytes is None:
            return
        while not self.response_bytes.acquire(nbytes, _CANCEL_CHECK_INTERVAL):
            self.check()
        self.reserved = nbytes

    async def areserve(self, nbytes: int) -> None:
        """:meth:`reserve` without blocking the event loop (looks again every 10 ms)."""
        import asyncio

        if nbytes <= 0 or self.response_bytes is None:
            return
        while not self.response_bytes.acquire(nbytes, 0):
            await asyncio.sleep(_BYTES_RECHECK)
            self.check()
        self.reserved = nbytes

    def finish(self) -> None:
        """Give the reserved bytes back and report how polling ended."""
        duration = self.clock() - self.started
        if self.reserved and self.response_bytes is not None:
            self.response_bytes.release(self.reserved)
            self.reserved = 0
        if has_handlers(FUTURE_COMPLETE):
            measurements: FutureCompleteMeasurements = {
                "duration": duration,
                "iterations": float(self.polls),
            }
            meta: FutureCompleteMetadata = {
                "request_id": self.request_id,
                "request_type": self.request_type,
                "outcome": self.outcome,
            }
            emit(FUTURE_COMPLETE, measurements, meta)

    def decode(self, decode: Callable[[Response], T], response: Response) -> T:
        """``decode(response)``; an unusable answer fails naming the request and what to do."""
        if not response.is_protobuf:
            body = response.json()
            if not isinstance(body, dict):
                raise self.invalid(self.unusable(response, _describe_json(response, body)))
        try:
            return decode(response)
        except APIResponseValidationError as exc:
            what = f"a result it could not use ({exc.message})"
            raise self.invalid(self.unusable(response, what)) from exc
        except TinkerError:
            raise
        except Exception as exc:
            kind = "protobuf" if response.is_protobuf else "JSON"
            self._emit_error(FUTURE_VALIDATION_ERROR, exc, status=response.status_code)
            raise ValueError(
                f"Error retrieving result: could not decode the {kind} payload for request_id="
                f"{self.request_id!r} ({self.request_type}): {exc}"
            ) from exc

    def warn_if_long(self, waited: float, answer: Answer) -> None:
        """Log a warning when the wait has grown long: no future waits silently."""
        if waited < self.next_warning:
            return
        self.next_warning = min(waited * 2, waited + WAIT_WARNING_MAX_INTERVAL)
        logger.warning(
            "still waiting for request_id=%r (%s) after %.1f min (%d polls); the server's last "
            "answer: %s",
            self.request_id,
            self.request_type,
            waited / 60,
            self.polls,
            _describe_answer(answer),
        )

    def unusable(self, response: Response, what: str) -> APIResponseValidationError:
        """The error for a 200 answer that is not what a Tinker API sends (issue 10.7)."""
        label = f"request_id={self.request_id!r} ({self.request_type})"
        message = (
            f"POST {RETRIEVE_FUTURE_PATH} for {label} answered {response.status_code} with "
            f"{what}; expected a JSON object (the {self.request_type} result, a try_again or "
            f"an error). The server at {self.base_url} does not answer as a Tinker "
            "API does: check base_url / TINKER_BASE_URL, and the server's logs for request "
            f"{self.request_id}."
        )
        return APIResponseValidationError(
            response,
            response.text[:500],
            message=message,
            request=f"POST {RETRIEVE_FUTURE_PATH}",
            status_code=response.status_code,
        )

    def invalid(self, error: APIResponseValidationError) -> APIResponseValidationError:
        """Emit ``tinkex.future.validation_error`` for ``error``; returns it to raise."""
        self._emit_error(FUTURE_VALIDATION_ERROR, error, status=error.status_code)
        return error

    def report_error(self, answer: Answer, action: PollAction) -> None:
        """Emit the ``tinkex.future.*`` error event of ``answer``, if it was an error."""
        retrying = not isinstance(action, Fail)
        if isinstance(answer, APIConnectionError):
            self._emit_error(FUTURE_CONNECTION_ERROR, answer, retrying=retrying)
        elif isinstance(answer, APIStatusError):
            self._emit_error(FUTURE_API_ERROR, answer, status=answer.status_code, retrying=retrying)
        elif isinstance(action, Fail):
            failed = isinstance(action.error, RequestFailedError)
            event = FUTURE_REQUEST_FAILED if failed else FUTURE_VALIDATION_ERROR
            self._emit_error(event, action.error, status=answer.status_code)

    def _emit_error(
        self, event: str, error: BaseException, *, status: int | None = None, retrying: bool = False
    ) -> None:
        if not has_handlers(event):
            return
        category = error.category if isinstance(error, RequestFailedError) else None
        meta: FutureErrorMetadata = {
            "request_id": self.request_id,
            "request_type": self.request_type,
            "iteration": self.polls - 1,
            "status": status,
            "category": None if category is None else str(category),
            "error": type(error).__name__,
            "retrying": retrying,
        }
        emit(event, {"elapsed": self.clock() - self.started}, meta)

    def report(self, state: QueueState, reason: str | None) -> None:
        if has_handlers(FUTURE_QUEUE_STATE):
            meta: QueueStateMetadata = {
                "request_id": self.request_id,
                "request_type": self.request_type,
                "queue_state": str(state),
                "reason": reason,
            }
            emit(FUTURE_QUEUE_STATE, {}, meta)
        if self.on_queue_state is not None:
            try:
                self.on_queue_state(state, reason)
            except Exception:
                logger.exception("queue-state callback failed for request %s", self.request_id)


def _describe_answer(answer: Answer) -> str:
    """One line on a poll's answer, for the long-wait warning."""
    if isinstance(answer, APIConnectionError):
        return f"none ({answer})"
    if isinstance(answer, APIStatusError):
        return f"HTTP {answer.status_code}"
    body = None if answer.is_protobuf else answer.json()
    if isinstance(body, dict) and body.get("type") == "try_again":
        report = queue_report(body)
        if report is None:
            return "try_again (the request is queued or running)"
        state, reason = report
        return f"try_again, queue state {state}" + (f" ({reason})" if reason else "")
    return f"HTTP {answer.status_code}"


def _describe_json(response: Response, body: Any) -> str:
    """A short description of a JSON answer that is not an object, for error messages."""
    if not response.content.strip():
        return "an empty body"
    kind = {type(None): "null", list: "list", str: "string", bool: "boolean"}
    return f"a JSON {kind.get(type(body), 'number')}"
