"""The ``retrieve_future`` decision table: what the poller does after each answer.

:func:`next_action` is a pure function of the poller's :class:`PollState` and one answer (the
2xx response, or the HTTP/connection error the transport raised), with one branch per row of
the table in its docstring (docs/protocol.md, "Futures"). It returns one of three actions —
:class:`Repoll`, :class:`Finish` or :class:`Fail` — that the poll loops (``tinkex._poller``)
perform. The back-off rows ask :func:`~tinkex._transport.retry.poll_retry_policy`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from tinkex._exceptions import (
    APIConnectionError,
    APIStatusError,
    RequestFailedError,
    RetryableException,
)
from tinkex._futures import QueueState
from tinkex._transport.retry import RetryPolicy, RetryState

if TYPE_CHECKING:
    from tinkex._transport import Response

__all__ = [
    "MAX_BAD_REQUESTS",
    "UNREACHABLE_LIMIT",
    "Fail",
    "Finish",
    "PollAction",
    "PollState",
    "QueueReport",
    "Repoll",
    "next_action",
    "queue_report",
]

#: 400 answers tolerated (a proxy artefact) before polling fails.
MAX_BAD_REQUESTS = 3
#: Seconds without any HTTP answer (only connection errors and timeouts) before polling fails;
#: the same budget as the holder's retries of other calls.
UNREACHABLE_LIMIT = 300.0

#: A queue state to report, with its reason.
QueueReport = tuple[QueueState, "str | None"]


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
    if not isinstance(answer, APIConnectionError | APIStatusError) and answer.is_protobuf:
        return Finish(answer)  # the result (first: one per request, no state to carry)
    label = f"request_id={request_id!r} ({request_type})"
    after = attrs.evolve(state, iteration=state.iteration + 1)
    if isinstance(answer, APIConnectionError):
        return _unanswered(after, answer, now, policy, label)
    after = attrs.evolve(after, unreachable_since=None)
    if isinstance(answer, APIStatusError):
        return _status_row(after, answer, now, policy, label)
    after = attrs.evolve(after, backoff=RetryState())
    body = answer.json()
    if not isinstance(body, dict):
        return Finish(answer)
    if body.get("type") == "try_again":
        return Repoll(after, queue_state=queue_report(body))
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
        return Repoll(attrs.evolve(after, bad_requests=0), queue_state=queue_report(exc.body))
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


def queue_report(body: Any) -> QueueReport | None:
    """The queue state and reason a ``try_again`` or 408 body carries, if any."""
    if not isinstance(body, dict):
        return None
    raw = body.get("queue_state")
    reason = body.get("queue_state_reason")
    if raw or reason is not None:
        return QueueState.parse(raw or "unknown"), reason
    return None
