"""The ``retrieve_future`` poller: the loops that turn a request id into its result.

A future-returning request answers with a request id; :func:`poll_future` (on a thread) and
:func:`apoll_future` (a coroutine on the I/O loop) ask ``POST /api/v1/retrieve_future`` until
that request has a result (docs/protocol.md, "Futures"). What to do with each answer is the
decision table, :func:`~tinkex._poll_table.next_action` (a pure function, tested row by row);
the side effects — polls, waits, reports, reservations, decoding — are
:class:`~tinkex._poll_run.PollRun`'s. The loops only connect the two.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError
from typing import TYPE_CHECKING, TypeVar

from tinkex._futures import QueueStateCallback
from tinkex._poll_pacing import NO_PACING, PollPacing
from tinkex._poll_run import PollRun
from tinkex._poll_table import Finish, PollState
from tinkex._transport.retry import BILLING_MAX_PAUSE, poll_retry_policy

if TYPE_CHECKING:
    from tinkex._transport import BytesSemaphore, Response, Transport
    from tinkex._transport.aio import AsyncTransport

__all__ = ["POLL_TIMEOUT", "PROTO_REQUEST_TYPES", "apoll_future", "poll_future"]

T = TypeVar("T")

#: Request types whose completed payload is protobuf (``Accept: application/x-protobuf``).
PROTO_REQUEST_TYPES = frozenset({"Sample", "Forward", "ForwardBackward"})
#: Read timeout of each poll, both loops' default: the server long-polls for less than this
#: (docs/protocol.md, "Futures").
POLL_TIMEOUT = 45.0


def _accept(request_type: str) -> str:
    return "application/x-protobuf" if request_type in PROTO_REQUEST_TYPES else "application/json"


def poll_future(
    transport: Transport,
    request_id: str,
    *,
    request_type: str,
    decode: Callable[[Response], T],
    stop: threading.Event,
    on_queue_state: QueueStateCallback | None = None,
    timeout: float = POLL_TIMEOUT,
    create_roundtrip_time: float | None = None,
    response_bytes: BytesSemaphore | None = None,
    accept: str | None = None,
    billing_max_pause: float = BILLING_MAX_PAUSE,
    pacing: PollPacing = NO_PACING,
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
        timeout: HTTP read timeout of each poll (:data:`POLL_TIMEOUT`).
        create_roundtrip_time: seconds from submission start to the future's creation, sent
            as ``X-Tinker-Create-Promise-Roundtrip-Time`` on the first poll.
        response_bytes: budget for payloads announced by ``complete_metadata``.
        accept: ``Accept`` header; default protobuf for ``PROTO_REQUEST_TYPES``, else JSON.
        billing_max_pause: how long continuous 402 answers pause instead of failing.
        pacing: a pause before each immediate re-poll and an overall deadline
            (:class:`~tinkex._poll_pacing.PollPacing`; default neither).
        sleep: how to sleep (tests); default sleeps wake up on ``stop``/cancellation.
        clock: monotonic clock (tests).

    Raises:
        RequestFailedError: the request failed server-side.
        RetryableException: the result is gone (HTTP 410); the request may be resubmitted.
        PollTimeoutError: polling went on past ``pacing.deadline``.
        ValueError: a fatal HTTP status, too many 400s, or an undecodable payload.
        concurrent.futures.CancelledError: ``stop`` was set or the future was cancelled.
    """
    run = PollRun(
        request_id=request_id,
        request_type=request_type,
        stop=stop,
        base_url=transport.base_url,
        accept=_accept(request_type) if accept is None else accept,
        timeout=timeout,
        roundtrip=create_roundtrip_time,
        on_queue_state=on_queue_state,
        response_bytes=response_bytes,
        clock=clock,
        sleep=sleep,
        pacing=pacing,
    )
    policy = poll_retry_policy(float(billing_max_pause))
    state = PollState()
    with run.running():
        while True:
            run.check()
            answer = run.retrieve(transport, state)
            action = run.next(state, answer, policy)
            if isinstance(action, Finish):
                return run.finished(decode, action)
            run.reserve(action.reserve)
            delay = run.pause(action.delay)
            if delay is not None:
                run.wait(delay)
            state = action.state


async def apoll_future(
    transport: AsyncTransport,
    request_id: str,
    *,
    request_type: str,
    decode: Callable[[Response], T],
    stop: threading.Event,
    on_queue_state: QueueStateCallback | None = None,
    timeout: float = POLL_TIMEOUT,
    create_roundtrip_time: float | None = None,
    response_bytes: BytesSemaphore | None = None,
    billing_max_pause: float = BILLING_MAX_PAUSE,
    pacing: PollPacing = NO_PACING,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """:func:`poll_future` as a coroutine on ``transport``'s event loop (no thread held).

    The same table (:func:`next_action`), policy, defaults, headers, reports and errors;
    waits are ``asyncio.sleep`` and cancelling the task stops polling. The ``Accept`` header
    follows ``request_type`` (:data:`PROTO_REQUEST_TYPES`).
    """
    import asyncio

    run = PollRun(
        request_id=request_id,
        request_type=request_type,
        stop=stop,
        base_url=transport.base_url,
        accept=_accept(request_type),
        timeout=timeout,
        roundtrip=create_roundtrip_time,
        on_queue_state=on_queue_state,
        response_bytes=response_bytes,
        clock=clock,
        future=None,  # cancellation reaches this coroutine as task cancellation
        pacing=pacing,
    )
    policy = poll_retry_policy(float(billing_max_pause))
    state = PollState()
    with run.running(cancelled=(CancelledError, asyncio.CancelledError)):
        while True:
            run.check()
            answer = await run.aretrieve(transport, state)
            action = run.next(state, answer, policy)
            if isinstance(action, Finish):
                return run.finished(decode, action)
            await run.areserve(action.reserve)
            delay = run.pause(action.delay)
            if delay is not None:
                await asyncio.sleep(delay)
            state = action.state
