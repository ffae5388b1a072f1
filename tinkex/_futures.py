"""Futures: :class:`APIFuture` and the blocking ``retrieve_future`` poller.

:class:`APIFuture` *is* a :class:`concurrent.futures.Future`, so ``concurrent.futures.wait``,
``as_completed`` and ``asyncio.wrap_future`` work on it, and it is awaitable. Work runs on an
executor thread (:meth:`APIFuture.run`); cancelling a future that has not finished marks it
cancelled at once and tells the code running for it (:func:`current_future`) to stop.

:func:`poll_future` is the loop that turns a server-side request id into a result (wire
protocol §6.2). It runs on an executor thread and blocks; it ends when the result arrives, when
it fails, when its future is cancelled, or when the owner's ``stop`` event is set.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import CancelledError, Executor, Future, InvalidStateError
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from tinkex._exceptions import (
    APIConnectionError,
    APIStatusError,
    RequestFailedError,
    RetryableException,
    TinkerError,
)
from tinkex.telemetry import FUTURE_COMPLETE, FUTURE_QUEUE_STATE, emit, has_handlers

if TYPE_CHECKING:
    from tinkex._transport import BytesSemaphore, Response, Transport

__all__ = [
    "PROTO_REQUEST_TYPES",
    "APIFuture",
    "AwaitableConcurrentFuture",
    "QueueState",
    "QueueStateCallback",
    "current_future",
    "mirror",
    "poll_future",
]

logger = logging.getLogger("tinkex.futures")

T = TypeVar("T")
U = TypeVar("U")

_PENDING = "PENDING"
_CANCELLED = "CANCELLED"

_local = threading.local()


def current_future() -> APIFuture[Any] | None:
    """The :class:`APIFuture` whose work runs on this thread (inside :meth:`APIFuture.run`)."""
    return getattr(_local, "future", None)


class APIFuture(Future[T], Generic[T]):
    """A future for a Tinker API result: a ``concurrent.futures.Future`` that is also awaitable.

    ``result(timeout)`` blocks (``TimeoutError`` after ``timeout`` seconds, the operation keeps
    running); ``await fut`` / ``await fut.result_async(timeout)`` wait without blocking the
    event loop (a timeout or cancellation there cancels the operation). ``cancel()`` works
    until the future has a result, also while its work is running: the work sees
    :func:`current_future` cancelled and stops at its next step.

    Example::

        fut = training_client.forward_backward(data, "cross_entropy")
        out = fut.result(timeout=600)          # or: out = await fut
    """

    def __init__(self) -> None:
        super().__init__()
        self._cancel_lock = threading.RLock()

    # ---- construction ----------------------------------------------------------------------

    @classmethod
    def run(cls, executor: Executor, fn: Callable[..., T], *args: Any) -> APIFuture[T]:
        """Run ``fn(*args)`` on ``executor``; the returned future mirrors its outcome.

        Cancelling the future before ``fn`` starts means ``fn`` never runs; an executor that
        drops the queued work (``shutdown(cancel_futures=True)``) cancels the future. If ``fn``
        raises ``concurrent.futures.CancelledError`` the future ends cancelled.

        Raises:
            RuntimeError: the executor is shut down.
        """
        future: APIFuture[T] = cls()

        def work() -> None:
            if future.done():
                return
            previous = getattr(_local, "future", None)
            _local.future = future
            try:
                value = fn(*args)
            except CancelledError:
                future.cancel()
            except BaseException as exc:
                future._settle_exception(exc)
            else:
                future._settle_result(value)
            finally:
                _local.future = previous

        inner = executor.submit(work)
        inner.add_done_callback(lambda f: future.cancel() if f.cancelled() else None)
        future.add_done_callback(lambda f: inner.cancel() if f.cancelled() else None)
        return future

    @classmethod
    def completed(cls, value: T) -> APIFuture[T]:
        """A future that already holds ``value``."""
        future: APIFuture[T] = cls()
        future.set_result(value)
        return future

    @classmethod
    def failed(cls, exc: BaseException) -> APIFuture[T]:
        """A future that already holds the exception ``exc``."""
        future: APIFuture[T] = cls()
        future.set_exception(exc)
        return future

    @classmethod
    def combine(
        cls, futures: Sequence[Future[U]], transform: Callable[[list[U]], T]
    ) -> APIFuture[T]:
        """A future of ``transform([f.result() for f in futures])``, without a thread.

        Fails with the first failing input (in input order of completion); cancelling the
        combined future cancels the inputs; a cancelled input cancels the combined future.
        ``transform`` runs on the thread that completes the last input.
        """
        combined: APIFuture[T] = cls()
        inputs = list(futures)
        remaining = [len(inputs)]
        lock = threading.Lock()

        def finish() -> None:
            try:
                value = transform([f.result() for f in inputs])
            except CancelledError:
                combined.cancel()
            except BaseException as exc:
                combined._settle_exception(exc)
            else:
                combined._settle_result(value)

        def on_input_done(f: Future[U]) -> None:
            if f.cancelled():
                combined.cancel()
                return
            exc = f.exception()
            if exc is not None:
                combined._settle_exception(exc)
                return
            with lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                finish()

        def on_combined_done(f: Future[T]) -> None:
            if f.cancelled():
                for item in inputs:
                    item.cancel()

        combined.add_done_callback(on_combined_done)
        if not inputs:
            finish()
        for item in inputs:
            item.add_done_callback(on_input_done)
        return combined

    def map(self, fn: Callable[[T], U]) -> APIFuture[U]:
        """A future of ``fn(self.result())``; ``fn`` runs on the thread completing ``self``."""
        return APIFuture.combine([self], lambda values: fn(values[0]))

    # ---- settling ----------------------------------------------------------------------------

    def _settle_result(self, value: T) -> None:
        try:
            self.set_result(value)
        except InvalidStateError:
            pass  # cancelled while the work ran: the cancellation wins

    def _settle_exception(self, exc: BaseException) -> None:
        try:
            self.set_exception(exc)
        except InvalidStateError:
            pass

    def cancel(self) -> bool:
        """Cancel unless a result is already set; returns whether the future is cancelled.

        Unlike a plain executor future this also works while the work is running (the work
        is asked to stop through :func:`current_future`).
        """
        with self._cancel_lock:
            if not super().cancel():
                return False
            if self._state == _CANCELLED:
                # Wake concurrent.futures.wait()/as_completed() waiters, which are only told
                # about cancellations through this call.
                self.set_running_or_notify_cancel()
            return True

    # ---- waiting -----------------------------------------------------------------------------

    def result(self, timeout: float | None = None) -> T:
        """Block until the result is ready and return it (or raise the operation's error).

        Raises:
            TimeoutError: not done after ``timeout`` seconds (the operation keeps running).
            concurrent.futures.CancelledError: the future was cancelled.
        """
        try:
            return super().result(timeout)
        except TimeoutError:
            if self.done():
                raise
            raise TimeoutError(f"API result not ready after {timeout} s") from None

    async def result_async(self, timeout: float | None = None) -> T:
        """Await the result; on timeout or cancellation the operation is cancelled.

        Raises:
            TimeoutError: not done after ``timeout`` seconds.
        """
        import asyncio  # only async callers pay for importing asyncio

        wrapped = asyncio.wrap_future(self)
        try:
            return await asyncio.wait_for(wrapped, timeout)
        except (asyncio.CancelledError, TimeoutError):
            self.cancel()
            raise

    def future(self) -> Future[T]:
        """The underlying ``concurrent.futures.Future`` — this object itself."""
        return self

    async def coroutine(self) -> T:
        """A coroutine of the result, for ``asyncio.create_task(fut.coroutine())``."""
        return await self.result_async()

    def __await__(self) -> Generator[Any, None, T]:
        return self.result_async().__await__()


def mirror(source: Future[Any], target: APIFuture[Any]) -> None:
    """Settle ``target`` like ``source``; cancelling ``target`` cancels ``source``."""

    def copy(f: Future[Any]) -> None:
        if f.cancelled():
            target.cancel()
        elif (exc := f.exception()) is not None:
            target._settle_exception(exc)
        else:
            target._settle_result(f.result())

    source.add_done_callback(copy)
    target.add_done_callback(lambda t: source.cancel() if t.cancelled() else None)


class AwaitableConcurrentFuture(APIFuture[T]):
    """An :class:`APIFuture` settled like ``future``, any ``concurrent.futures.Future``.

    The name and constructor of ``tinker.lib.public_interfaces.AwaitableConcurrentFuture``:
    it makes a future from any executor awaitable. Cancelling it cancels ``future``.

    Example::

        fut = AwaitableConcurrentFuture(executor.submit(work))
        value = await fut
    """

    def __init__(self, future: Future[T]) -> None:
        super().__init__()
        mirror(future, self)


# ---------------------------------------------------------------------------------------------
# retrieve_future poller (wire protocol §6.2)
# ---------------------------------------------------------------------------------------------


class QueueState(enum.StrEnum):
    """Server-side queue state of a pending request (``try_again`` answers)."""

    ACTIVE = "active"
    PAUSED_RATE_LIMIT = "paused_rate_limit"
    PAUSED_CAPACITY = "paused_capacity"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, value: object) -> QueueState:
        """The state named by ``value`` (``UNKNOWN`` for anything unrecognised)."""
        try:
            return cls(str(value))
        except ValueError:
            return cls.UNKNOWN


#: ``on_queue_state(state, reason)`` — called from the poller thread.
QueueStateCallback = Callable[[QueueState, "str | None"], None]

#: Request types whose completed payload is protobuf (``Accept: application/x-protobuf``).
PROTO_REQUEST_TYPES = frozenset({"Sample", "Forward", "ForwardBackward"})

RETRIEVE_FUTURE_PATH = "/api/v1/retrieve_future"
QUEUE_STATE_EVENT = FUTURE_QUEUE_STATE
COMPLETE_EVENT = FUTURE_COMPLETE

_MAX_BAD_REQUEST_RETRIES = 3
# Granularity at which a real sleep notices that its future was cancelled.
_CANCEL_CHECK_INTERVAL = 0.25


class _Poll:
    """State of one poll_future call (kept off the hot path of the module-level function)."""

    def __init__(
        self,
        request_id: str,
        request_type: str,
        stop: threading.Event,
        sleep: Callable[[float], None] | None,
        on_queue_state: QueueStateCallback | None,
    ) -> None:
        self.request_id = request_id
        self.request_type = request_type
        self.stop = stop
        self.sleep = sleep
        self.on_queue_state = on_queue_state
        self.future = current_future()

    def stopped(self) -> bool:
        return self.stop.is_set() or (self.future is not None and self.future.cancelled())

    def check(self) -> None:
        if self.stopped():
            raise CancelledError(
                f"polling of request {self.request_id} ({self.request_type}) was cancelled"
            )

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

    def queue_state(self, state: QueueState, reason: str | None) -> None:
        if has_handlers(QUEUE_STATE_EVENT):
            emit(
                QUEUE_STATE_EVENT,
                {},
                {
                    "request_id": self.request_id,
                    "request_type": self.request_type,
                    "queue_state": str(state),
                    "reason": reason,
                },
            )
        if self.on_queue_state is not None:
            try:
                self.on_queue_state(state, reason)
            except Exception:
                logger.exception("queue-state callback failed for request %s", self.request_id)

    def queue_state_from(self, body: Any) -> None:
        if not isinstance(body, dict):
            return
        raw = body.get("queue_state")
        reason = body.get("queue_state_reason")
        if raw or reason is not None:
            self.queue_state(QueueState.parse(raw or "unknown"), reason)


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
    billing_max_pause: float = 3600.0,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Poll ``POST /api/v1/retrieve_future`` until request ``request_id`` has a result.

    Implements wire protocol §6.2:

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
    connection error / timeout                  sleep ``min(2**n, 30)`` s, re-poll
    ==========================================  =================================================

    ``n`` counts consecutive connection errors and 429s; any other HTTP answer resets it.

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
    from tinkex._transport.retry import NO_RETRY, RetryState, poll_retry_policy

    policy = poll_retry_policy(float(billing_max_pause))
    poll = _Poll(request_id, request_type, stop, sleep, on_queue_state)
    if accept is None:
        accept = (
            "application/x-protobuf" if request_type in PROTO_REQUEST_TYPES else "application/json"
        )
    started = clock()
    iteration = -1
    allow_metadata_only = True
    backoff = RetryState()
    bad_requests = 0
    reserved = 0
    outcome = "error"
    try:
        while True:
            iteration += 1
            poll.check()
            headers = {
                "X-Tinker-Request-Iteration": str(iteration),
                "X-Tinker-Request-Type": request_type,
            }
            if iteration == 0 and create_roundtrip_time is not None:
                headers["X-Tinker-Create-Promise-Roundtrip-Time"] = str(create_roundtrip_time)
            try:
                response = transport.request(
                    "POST",
                    RETRIEVE_FUTURE_PATH,
                    json={"request_id": request_id, "allow_metadata_only": allow_metadata_only},
                    headers=headers,
                    timeout=timeout,
                    retry=NO_RETRY,
                    accept=accept,
                )
            except APIStatusError as exc:
                status = exc.status_code
                if status in (402, 429):
                    decision = policy.decide(exc, backoff, clock())
                    if not decision.retry:
                        raise _fatal(request_id, request_type, exc) from exc
                    poll.wait(decision.delay)
                    backoff = decision.state
                    continue
                backoff = RetryState()
                if status == 408:
                    bad_requests = 0
                    poll.queue_state_from(exc.body)
                    continue
                if 500 <= status < 600:
                    continue
                if status == 400:
                    if bad_requests < _MAX_BAD_REQUEST_RETRIES:
                        bad_requests += 1
                        continue
                    raise ValueError(
                        f"Error retrieving result: {exc.message} (status 400) for request_id="
                        f"{request_id!r} ({request_type}) — exceeded "
                        f"{_MAX_BAD_REQUEST_RETRIES} retries"
                    ) from exc
                if status == 410:
                    raise RetryableException(
                        f"Result of request {request_id!r} ({request_type}) is gone (HTTP 410); "
                        "the request must be resubmitted"
                    ) from exc
                raise _fatal(request_id, request_type, exc) from exc
            except APIConnectionError as exc:
                decision = policy.decide(exc, backoff, clock())
                poll.wait(decision.delay)
                backoff = decision.state
                continue

            backoff = RetryState()
            if not response.is_protobuf:
                body = response.json()
                if isinstance(body, dict):
                    if body.get("type") == "try_again":
                        poll.queue_state_from(body)
                        continue
                    if body.get("status") == "complete_metadata":
                        if not allow_metadata_only:
                            raise ValueError(
                                f"Server answered complete_metadata twice for request_id="
                                f"{request_id!r} ({request_type})"
                            )
                        allow_metadata_only = False
                        size = int(body.get("response_payload_size") or 0)
                        if response_bytes is not None and size > 0:
                            while not response_bytes.acquire(size, _CANCEL_CHECK_INTERVAL):
                                poll.check()
                            reserved = size
                        continue
                    if "error" in body:
                        outcome = "failed"
                        poll.queue_state(QueueState.ACTIVE, None)
                        raise RequestFailedError(
                            f"Request failed: {body['error']} for request_id={request_id!r} "
                            f"({request_type})",
                            request_id=request_id,
                            category=body.get("category") or "unknown",
                        )
            try:
                result = decode(response)
            except TinkerError:
                raise
            except Exception as exc:
                raise ValueError(
                    f"Error retrieving result: could not decode the "
                    f"{'protobuf' if response.is_protobuf else 'JSON'} payload for request_id="
                    f"{request_id!r} ({request_type}): {exc}"
                ) from exc
            outcome = "ok"
            poll.queue_state(QueueState.ACTIVE, None)
            return result
    except CancelledError:
        outcome = "cancelled"
        raise
    finally:
        if reserved and response_bytes is not None:
            response_bytes.release(reserved)
        if has_handlers(COMPLETE_EVENT):
            emit(
                COMPLETE_EVENT,
                {"duration": clock() - started, "iterations": float(iteration + 1)},
                {"request_id": request_id, "request_type": request_type, "outcome": outcome},
            )


def _fatal(request_id: str, request_type: str, exc: APIStatusError) -> ValueError:
    return ValueError(
        f"Error retrieving result: {exc.message} with status {exc.status_code} for request_id="
        f"{request_id!r} ({request_type})"
    )
