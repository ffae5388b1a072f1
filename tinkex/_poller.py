"""The ``retrieve_future`` poller: a decision table as a function, and the loop that runs it.

A future-returning request answers with a request id; :func:`poll_future` asks
``POST /api/v1/retrieve_future`` until that request has a result (docs/protocol.md, "Futures").
What to do with each answer is :func:`next_action`, a pure function of the poller's
:class:`PollState` and the answer — one branch per row of the table in :func:`poll_future`'s
docstring — that returns one of three actions: :class:`Repoll`, :class:`Finish` or
:class:`Fail`. The loop only performs them: it sends the polls, waits, reports queue states,
reserves response bytes, decodes, and stops when its owner or its future says so.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from tinkex._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    RequestFailedError,
    RetryableException,
    TinkerError,
)
from tinkex._futures import QueueState, QueueStateCallback, current_future
from tinkex._transport.retry import (
    BILLING_MAX_PAUSE,
    NO_RETRY,
    RetryPolicy,
    RetryState,
    poll_retry_policy,
)
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
    from tinkex._transport import BytesSemaphore, Response, Transport
    from tinkex._transport.aio import AsyncTransport

__all__ = [
    "PROTO_REQUEST_TYPES",
    "Fail",
    "Finish",
    "PollAction",
    "PollState",
    "QueueState",
    "QueueStateCallback",
    "Repoll",
    "apoll_future",
    "next_action",
    "poll_future",
]

logger = logging.getLogger("tinkex.futures")

T = TypeVar("T")

RETRIEVE_FUTURE_PATH = "/api/v1/retrieve_future"
#: Request types whose completed payload is protobuf (``Accept: application/x-protobuf``).
PROTO_REQUEST_TYPES = frozenset({"Sample", "Forward", "ForwardBackward"})
#: 400 answers tolerated (a proxy artefact) before polling fails.
MAX_BAD_REQUESTS = 3
#: Seconds without any HTTP answer (only connection errors and timeouts) before polling fails;
#: the same budget as the holder's retries of other calls.
UNREACHABLE_LIMIT = 300.0
#: A wait this long (seconds) logs a warning naming the request and the server's last answer;
#: then again each time the wait has doubled (at most every ``WAIT_WARNING_MAX_INTERVAL``).
WAIT_WARNING_AFTER = 60.0
WAIT_WARNING_MAX_INTERVAL = 600.0
# Granularity at which a real sleep notices that its future was cancelled.
_CANCEL_CHECK_INTERVAL = 0.25
# How often a coroutine waiting for response bytes looks again.
_BYTES_RECHECK = 0.01


#: A queue state to report, with its reason.
QueueReport = tuple[QueueState, "str | None"]


# ---- the decision table -----------------------------------------------------------------------


@attrs.frozen
class PollState:
    """What the poller knows between two polls.

    Attributes:
        iteration: ``X-Tinker-Request-Iteration`` of the next poll (0 first).
        allow_metadata_only: sent with the next poll; false after a ``complete_metadata``.
        bad_requests: 400 answers so far (a 408 starts the count again).
        backoff: the back-off policy's progress (429s and connection errors in a row, the
            current run of 402s); any other answer resets it.
        unreachable_since: when the current run of connection errors began (``None`` after
            any HTTP answer).
    """

    iteration: int = 0
    allow_metadata_only: bool = True
    bad_requests: int = 0
    backoff: RetryState = attrs.field(factory=RetryState)
    unreachable_since: float | None = None


@attrs.frozen
class Repoll:
    """Poll again with ``state``, after ``delay`` seconds (``None``: at once).

    ``queue_state`` is reported first; ``reserve`` bytes are reserved on the response budget
    before the next poll (the payload a ``complete_metadata`` answer announced).
    """

    state: PollState
    delay: float | None = None
    queue_state: QueueReport | None = None
    reserve: int = 0


@attrs.frozen
class Finish:
    """The answer holds the result: decode it (the request is ``ACTIVE`` again)."""

    response: Response
    queue_state: QueueReport | None = None


@attrs.frozen
class Fail:
    """Polling ends with ``error`` (raised from ``cause``); ``outcome`` labels the telemetry."""

    error: Exception
    cause: BaseException | None = None
    outcome: str = "error"
    queue_state: QueueReport | None = None


PollAction = Repoll | Finish | Fail


def next_action(
    state: PollState,
    answer: Response | APIStatusError | APIConnectionError,
    *,
    now: float,
    policy: RetryPolicy,
    request_id: str,
    request_type: str,
) -> PollAction:
    """What to do after ``answer`` to the poll sent with ``state``.

    ``answer`` is the 2xx :class:`Response` or the exception the transport raised; ``policy``
    (:func:`poll_retry_policy`) decides the back-off rows at time ``now``. Pure: no I/O.

    One row per answer shape (docs/protocol.md, "Futures"):

    ==========================================  =================================================
    answer                                      action
    ==========================================  =================================================
    200 ``application/x-protobuf``              ``decode(response)``
    200 ``{"type": "try_again", ...}``          re-poll at once; ``on_queue_state(state, reason)``
    200 ``{"status": "complete_metadata"}``     reserve ``response_payload_size`` bytes on
                                                ``response_bytes``, re-poll with
                                                ``allow_metadata_only: false``
    200 ``{"error", "category"}``               :class:`RequestFailedError`
    200 other JSON                              ``decode(response)``
    408 / 5xx                                   re-poll at once (408 body's queue state reported)
    429                                         sleep ``min(2**n, 30)`` s, re-poll
    400                                         re-poll up to 3 times, then ``ValueError``
    402                                         sleep 5 s, re-poll, for up to ``billing_max_pause``
    410                                         :class:`RetryableException`
    other 4xx                                   ``ValueError`` naming the request id and status
    connection error / timeout                  sleep ``min(2**n, 30)`` s, re-poll; after
                                                ``UNREACHABLE_LIMIT`` s without any HTTP answer,
                                                :class:`APIConnectionError`
    ==========================================  =================================================

    ``n`` counts consecutive connection errors and 429s; any other HTTP answer resets it.
    """
    label = f"request_id={request_id!r} ({request_type})"
    after = attrs.evolve(state, iteration=state.iteration + 1)
    if isinstance(answer, APIConnectionError):
        return _unanswered(after, answer, now, policy, label)
    after = attrs.evolve(after, unreachable_since=None)
    if isinstance(answer, APIStatusError):
        return _status_row(after, answer, now, policy, label)
    after = attrs.evolve(after, backoff=RetryState())
    if answer.is_protobuf:
        return Finish(answer)
    body = answer.json()
    if not isinstance(body, dict):
        return Finish(answer)
    if body.get("type") == "try_again":
        return Repoll(after, queue_state=_queue_report(body))
    if body.get("status") == "complete_metadata":
        if not state.allow_metadata_only:
            return Fail(ValueError(f"Server answered complete_metadata twice for {label}"))
        size = int(body.get("response_payload_size") or 0)
        return Repoll(attrs.evolve(after, allow_metadata_only=False), reserve=max(size, 0))
    if "error" in body:
        failed = RequestFailedError(
            f"Request failed: {body['error']} for {label}",
            request_id=request_id,
            category=body.get("category") or "unknown",
        )
        return Fail(failed, outcome="failed", queue_state=(QueueState.ACTIVE, None))
    return Finish(answer)


def _status_row(
    after: PollState, exc: APIStatusError, now: float, policy: RetryPolicy, label: str
) -> PollAction:
    status = exc.status_code
    if status in (402, 429):
        return _back_off(after, exc, now, policy, label)
    after = attrs.evolve(after, backoff=RetryState())
    if status == 408:
        return Repoll(attrs.evolve(after, bad_requests=0), queue_state=_queue_report(exc.body))
    if 500 <= status < 600:
        return Repoll(after)
    if status == 400:
        if after.bad_requests < MAX_BAD_REQUESTS:
            return Repoll(attrs.evolve(after, bad_requests=after.bad_requests + 1))
        message = (
            f"Error retrieving result: {exc.message} (status 400) for {label} — exceeded "
            f"{MAX_BAD_REQUESTS} retries"
        )
        return Fail(ValueError(message), exc)
    if status == 410:
        gone = f"Result of {label} is gone (HTTP 410); the request must be resubmitted"
        return Fail(RetryableException(gone), exc)
    return Fail(_fatal(exc, label), exc)


def _unanswered(
    after: PollState, exc: APIConnectionError, now: float, policy: RetryPolicy, label: str
) -> PollAction:
    """A poll that got no HTTP answer: back off, until ``UNREACHABLE_LIMIT`` s of them."""
    since = now if after.unreachable_since is None else after.unreachable_since
    if now - since >= UNREACHABLE_LIMIT:
        message = (
            f"Waiting for the result of {label}: no answer from the server for "
            f"{now - since:.0f} s (last error: {exc}). The server may be down or unreachable: "
            "check base_url / TINKER_BASE_URL and the network, then retry."
        )
        return Fail(APIConnectionError(exc.request, message=message), exc)
    return _back_off(attrs.evolve(after, unreachable_since=since), exc, now, policy, label)


def _back_off(
    after: PollState,
    exc: APIStatusError | APIConnectionError,
    now: float,
    policy: RetryPolicy,
    label: str,
) -> PollAction:
    decision = policy.decide(exc, after.backoff, now)
    if not decision.retry:
        if isinstance(exc, APIStatusError):
            return Fail(_fatal(exc, label), exc)
        return Fail(ValueError(f"Error retrieving result for {label}: {exc}"), exc)
    return Repoll(attrs.evolve(after, backoff=decision.state), delay=decision.delay)


def _fatal(exc: APIStatusError, label: str) -> ValueError:
    return ValueError(
        f"Error retrieving result: {exc.message} with status {exc.status_code} for {label}"
    )


def _describe_answer(answer: Response | APIStatusError | APIConnectionError) -> str:
    """One line on a poll's answer, for the long-wait warning."""
    if isinstance(answer, APIConnectionError):
        return f"none ({answer})"
    if isinstance(answer, APIStatusError):
        return f"HTTP {answer.status_code}"
    body = None if answer.is_protobuf else answer.json()
    if isinstance(body, dict) and body.get("type") == "try_again":
        report = _queue_report(body)
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


def _queue_report(body: Any) -> QueueReport | None:
    if not isinstance(body, dict):
        return None
    raw = body.get("queue_state")
    reason = body.get("queue_state_reason")
    if raw or reason is not None:
        return QueueState.parse(raw or "unknown"), reason
    return None


# ---- the loop ---------------------------------------------------------------------------------


def poll_future(
    transport: Transport,
    request_id: str,
    *,
    request_type: str,
    decode: Callable[[Response], T],
    stop: threading.Event,
    on_queue_state: QueueStateCallback | None = None,
    timeout: float = 45.0,
    create_roundtrip_time: float | None = None,
    response_bytes: BytesSemaphore | None = None,
    accept: str | None = None,
    billing_max_pause: float = BILLING_MAX_PAUSE,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Poll ``POST /api/v1/retrieve_future`` until request ``request_id`` has a result.

    Each answer is handled by :func:`next_action`, whose docstring is the decision table
    (docs/protocol.md, "Futures"); the sleeps and the 402 budget are
    :func:`~tinkex._transport.retry.poll_retry_policy`'s.

    Args:
        transport: the transport to poll through (requests are sent with ``NO_RETRY``).
        request_id: the server's id from the submission answer.
        request_type: ``X-Tinker-Request-Type`` (``"Sample"``, ``"ForwardBackward"``, ...).
        decode: turns the final 200 response (protobuf or JSON, see ``Response.is_protobuf``)
            into the result. ``TinkerError``s it raises propagate; other errors become
            ``ValueError`` naming the request.
        stop: the owner's stop event; when set the poller raises ``CancelledError`` at its
            next step (sleeps wake up at once).
        on_queue_state: observer of queue-state changes; ``ACTIVE`` is reported on completion.
        timeout: HTTP read timeout of each poll (the server long-polls for < 45 s).
        create_roundtrip_time: seconds from submission start to the future's creation, sent
            as ``X-Tinker-Create-Promise-Roundtrip-Time`` on the first poll.
        response_bytes: budget for payloads announced by ``complete_metadata``.
        accept: ``Accept`` header; default protobuf for ``PROTO_REQUEST_TYPES``, else JSON.
        billing_max_pause: how long continuous 402 answers pause instead of failing.
        sleep: how to sleep (tests); default sleeps wake up on ``stop``/cancellation.
        clock: monotonic clock (tests).

    Raises:
        RequestFailedError: the request failed server-side.
        RetryableException: the result is gone (HTTP 410); the request may be resubmitted.
        ValueError: a fatal HTTP status, too many 400s, or an undecodable payload.
        concurrent.futures.CancelledError: ``stop`` was set or the future was cancelled.
    """
    run = _PollRun(
        transport, request_id, request_type, stop, sleep, on_queue_state, response_bytes, clock
    )
    if accept is None:
        accept = (
            "application/x-protobuf" if request_type in PROTO_REQUEST_TYPES else "application/json"
        )
    policy = poll_retry_policy(float(billing_max_pause))
    state = PollState()
    outcome = "error"
    try:
        while True:
            run.check()
            answer = run.retrieve(state, timeout, accept, create_roundtrip_time)
            action = run.next(state, answer, policy)
            if isinstance(action, Finish):
                result = run.decode(decode, action.response)
                outcome = "ok"
                run.report(QueueState.ACTIVE, None)
                return result
            run.reserve(action.reserve)
            if action.delay is not None:
                run.wait(action.delay)
            state = action.state
    except CancelledError:
        outcome = "cancelled"
        raise
    except _Failed as failed:
        outcome = failed.outcome
        raise failed.error from failed.cause
    finally:
        run.finish(outcome)


async def apoll_future(
    transport: AsyncTransport,
    request_id: str,
    *,
    request_type: str,
    decode: Callable[[Response], T],
    stop: threading.Event,
    on_queue_state: QueueStateCallback | None = None,
    timeout: float = 45.0,
    create_roundtrip_time: float | None = None,
    response_bytes: BytesSemaphore | None = None,
    billing_max_pause: float = BILLING_MAX_PAUSE,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """:func:`poll_future` as a coroutine on ``transport``'s event loop (no thread held).

    The same table (:func:`next_action`), policy, headers, reports and errors; waits are
    ``asyncio.sleep`` and cancelling the task stops polling. The ``Accept`` header follows
    ``request_type`` (:data:`PROTO_REQUEST_TYPES`).
    """
    import asyncio

    run = _PollRun(
        None, request_id, request_type, stop, None, on_queue_state, response_bytes, clock
    )
    run.future = None  # cancellation reaches this coroutine as task cancellation
    run.base_url = transport.base_url
    accept = "application/x-protobuf" if request_type in PROTO_REQUEST_TYPES else "application/json"
    policy = poll_retry_policy(float(billing_max_pause))
    state = PollState()
    outcome = "error"
    try:
        while True:
            run.check()
            try:
                answer: Response | APIStatusError | APIConnectionError = await transport.request(
                    "POST",
                    RETRIEVE_FUTURE_PATH,
                    json=run.body(state),
                    headers=run.headers(state, create_roundtrip_time),
                    timeout=timeout,
                    accept=accept,
                )
            except (APIStatusError, APIConnectionError) as exc:
                answer = exc
            run.polls += 1
            action = run.next(state, answer, policy)
            if isinstance(action, Finish):
                result = run.decode(decode, action.response)
                outcome = "ok"
                run.report(QueueState.ACTIVE, None)
                return result
            if action.reserve > 0 and response_bytes is not None:
                while not response_bytes.acquire(action.reserve, 0):
                    await asyncio.sleep(_BYTES_RECHECK)
                    run.check()
                run.reserved = action.reserve
            if action.delay is not None:
                await asyncio.sleep(action.delay)
            state = action.state
    except (CancelledError, asyncio.CancelledError):
        outcome = "cancelled"
        raise
    except _Failed as failed:
        outcome = failed.outcome
        raise failed.error from failed.cause
    finally:
        run.finish(outcome)


class _Failed(Exception):
    """Carries a :class:`Fail` action out of :meth:`_PollRun.next` to the poll loop."""

    def __init__(self, action: Fail) -> None:
        super().__init__(action.error)
        self.outcome = action.outcome
        self.error = action.error
        self.cause = action.cause


class _PollRun:
    """The side effects of one :func:`poll_future` call: I/O, waits, reports, reservations."""

    def __init__(
        self,
        transport: Transport | None,
        request_id: str,
        request_type: str,
        stop: threading.Event,
        sleep: Callable[[float], None] | None,
        on_queue_state: QueueStateCallback | None,
        response_bytes: BytesSemaphore | None,
        clock: Callable[[], float],
    ) -> None:
        self.transport = transport
        self.base_url = transport.base_url if transport is not None else ""
        self.request_id = request_id
        self.request_type = request_type
        self.stop = stop
        self.sleep = sleep
        self.on_queue_state = on_queue_state
        self.response_bytes = response_bytes
        self.future = current_future()
        self.reserved = 0
        self.polls = 0
        self.next_warning = WAIT_WARNING_AFTER
        self.clock = clock
        self.started = clock()

    def next(
        self,
        state: PollState,
        answer: Response | APIStatusError | APIConnectionError,
        policy: RetryPolicy,
    ) -> Repoll | Finish:
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

    def stopped(self) -> bool:
        return self.stop.is_set() or (self.future is not None and self.future.cancelled())

    def check(self) -> None:
        if self.stopped():
            raise CancelledError(
                f"polling of request {self.request_id} ({self.request_type}) was cancelled"
            )

    def retrieve(
        self, state: PollState, timeout: float, accept: str, roundtrip: float | None
    ) -> Response | APIStatusError | APIConnectionError:
        """Send the poll of ``state``; the answer, or the HTTP/connection error it ended in."""
        assert self.transport is not None, "the threaded poll needs its transport"
        self.polls += 1
        try:
            return self.transport.request(
                "POST",
                RETRIEVE_FUTURE_PATH,
                json=self.body(state),
                headers=self.headers(state, roundtrip),
                timeout=timeout,
                retry=NO_RETRY,
                accept=accept,
            )
        except (APIStatusError, APIConnectionError) as exc:
            return exc

    def headers(self, state: PollState, roundtrip: float | None) -> dict[str, str]:
        """The headers of the poll sent with ``state``."""
        headers = {
            "X-Tinker-Request-Iteration": str(state.iteration),
            "X-Tinker-Request-Type": self.request_type,
            # The official SDK marks its polls so; servers may ignore it (docs/protocol.md).
            "X-Stainless-Raw-Response": "raw",
        }
        if state.iteration == 0 and roundtrip is not None:
            headers["X-Tinker-Create-Promise-Roundtrip-Time"] = str(roundtrip)
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

    def finish(self, outcome: str) -> None:
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
                "outcome": outcome,
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

    def warn_if_long(
        self, waited: float, answer: Response | APIStatusError | APIConnectionError
    ) -> None:
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

    def report_error(
        self, answer: Response | APIStatusError | APIConnectionError, action: PollAction
    ) -> None:
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
