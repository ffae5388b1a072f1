"""The schema of every telemetry event tinkex emits: one pair of TypedDicts per event name.

A handler receives ``(event, measurements, metadata)``; :data:`EVENT_SCHEMAS` says, per event
name, which keys each of the two mappings carries (``measurements`` are numbers, ``metadata``
anything JSON-like). Emitters build their payloads as these TypedDicts, so mypy checks the keys;
consumers (:mod:`tinkex.metrics`, your handlers) read them by name. A key marked
``NotRequired`` may be absent; every other key is always present (``None`` when unknown).

==========================================  =================================================
event                                       emitted by
==========================================  =================================================
``tinkex.http.request.start|stop|exception``  ``Transport.request``, once per HTTP attempt
``tinkex.http.retry``                       every retry loop (``RetryPolicy.run``), before a
                                            counted retry's wait
``tinkex.retry.attempt.start|stop|failed``  the same loops, around each attempt (``failed``:
                                            the loop gives up)
``tinkex.future.queue_state``               the ``retrieve_future`` poller (queue-state reports)
``tinkex.future.complete``                  the poller, when it ends (any outcome)
``tinkex.future.api_error|connection_error|  the poller, for each poll answer that is an error
request_failed|validation_error``           (re-polled or not)
``tinkex.custom_loss.start|stop|exception``  ``tinkex.regularizers.compute_custom_loss``
``tinkex.regularizer.compute.start|stop|     the same, once per regularizer
exception``
``tinkex.circuit_breaker.state_change``     ``tinkex.resilience.CircuitBreaker``
==========================================  =================================================

The recovery events (``tinkex.recovery.*``) have their schema next to their emitter, in
``tinkex/recovery/_events.py``.
"""

# No ``from __future__ import annotations`` here: TypedDict needs the real ``NotRequired``
# objects at class creation to tell optional keys from required ones.
from collections.abc import Mapping
from typing import NotRequired, TypedDict

HTTP_REQUEST_START = "tinkex.http.request.start"
HTTP_REQUEST_STOP = "tinkex.http.request.stop"
HTTP_REQUEST_EXCEPTION = "tinkex.http.request.exception"
HTTP_RETRY = "tinkex.http.retry"
RETRY_ATTEMPT_START = "tinkex.retry.attempt.start"
RETRY_ATTEMPT_STOP = "tinkex.retry.attempt.stop"
RETRY_ATTEMPT_FAILED = "tinkex.retry.attempt.failed"
FUTURE_QUEUE_STATE = "tinkex.future.queue_state"
FUTURE_COMPLETE = "tinkex.future.complete"
FUTURE_API_ERROR = "tinkex.future.api_error"
FUTURE_CONNECTION_ERROR = "tinkex.future.connection_error"
FUTURE_REQUEST_FAILED = "tinkex.future.request_failed"
FUTURE_VALIDATION_ERROR = "tinkex.future.validation_error"
CUSTOM_LOSS_START = "tinkex.custom_loss.start"
CUSTOM_LOSS_STOP = "tinkex.custom_loss.stop"
CUSTOM_LOSS_EXCEPTION = "tinkex.custom_loss.exception"
REGULARIZER_START = "tinkex.regularizer.compute.start"
REGULARIZER_STOP = "tinkex.regularizer.compute.stop"
REGULARIZER_EXCEPTION = "tinkex.regularizer.compute.exception"
CIRCUIT_BREAKER_STATE_CHANGE = "tinkex.circuit_breaker.state_change"


class NoMeasurements(TypedDict):
    """Events that carry no numbers."""


# -- HTTP ----------------------------------------------------------------------------------------


class HttpRequestMetadata(TypedDict):
    """``tinkex.http.request.start``: one HTTP attempt begins."""

    method: str
    path: str
    retry_count: int  #: HTTP-layer retry number of this attempt (0 first)
    #: the public method that made the request (``x-sdk-method``), when one did
    sdk_method: NotRequired[str]
    #: ids of the client the public method was called on (tinkex/telemetry/_context.py)
    session_id: NotRequired[str]
    model_id: NotRequired[str]
    sampling_session_id: NotRequired[str]
    #: what the user attached with ``tinkex.telemetry.metadata(...)``
    metadata: NotRequired[dict[str, object]]


class DurationMeasurements(TypedDict):
    """Seconds the operation took."""

    duration: float


class HttpRequestStopMetadata(HttpRequestMetadata):
    """``tinkex.http.request.stop``: the server answered (any status)."""

    status: int
    request_id: str | None  #: the ``x-request-id`` response header


class HttpRequestExceptionMetadata(HttpRequestMetadata):
    """``tinkex.http.request.exception``: no answer (connection error or timeout)."""

    error: str  #: exception class name


class RetryMeasurements(TypedDict):
    """``tinkex.http.retry``: the wait before the next attempt, and the attempt that failed."""

    delay: float
    attempt: float


class RetryMetadata(TypedDict):
    """``tinkex.http.retry``: which call is retried after which failure.

    ``method``/``path`` are set when the call is an HTTP request (``request`` is then
    ``"METHOD /path"``), ``None`` for other calls (``resilience.with_retry(name="...")``).
    ``name``, ``retry_count`` and ``error_type`` are set by ``with_retry`` only, for handlers
    written before this schema; they repeat ``request``, ``attempt`` and ``error``.
    """

    policy: str  #: the RetryPolicy's name ("http", "holder", "sample", ...)
    request: str | None
    method: str | None
    path: str | None
    error: str  #: exception class name
    status: int | None  #: HTTP status of the failure, if it was one
    name: NotRequired[str]
    retry_count: NotRequired[int]
    error_type: NotRequired[str]


class RetryAttemptMetadata(TypedDict):
    """``tinkex.retry.attempt.start|stop``: one attempt of a retry loop (measurements:
    ``system_time`` at start, ``duration`` at stop)."""

    policy: str  #: the RetryPolicy's name
    request: str | None  #: what is retried ("METHOD /path" for HTTP requests)
    attempt: int  #: attempts made before this one (0 first)


class RetryAttemptFailedMetadata(RetryAttemptMetadata):
    """``tinkex.retry.attempt.failed`` (measurements: ``duration``): the loop gives up."""

    error: str  #: exception class name
    status: int | None  #: HTTP status of the failure, if it was one
    reason: str  #: "not_retryable" or "exhausted" (the attempt, time or billing budget)


# -- futures -------------------------------------------------------------------------------------


class QueueStateMetadata(TypedDict):
    """``tinkex.future.queue_state``: the server reported a queue state for a pending request."""

    request_id: str
    request_type: str
    queue_state: str  #: "active", "paused_capacity", "paused_rate_limit" or "unknown"
    reason: str | None


class FutureCompleteMeasurements(TypedDict):
    """``tinkex.future.complete``: how long polling took and how many polls it sent."""

    duration: float
    iterations: float


class FutureCompleteMetadata(TypedDict):
    """``tinkex.future.complete``: how polling ended."""

    request_id: str
    request_type: str
    outcome: str  #: "ok", "failed" (server-side failure), "error" or "cancelled"


class FutureErrorMeasurements(TypedDict):
    """``tinkex.future.*`` error events: seconds since polling began."""

    elapsed: float


class FutureErrorMetadata(TypedDict):
    """``tinkex.future.api_error`` (an HTTP error status), ``connection_error`` (no answer),
    ``request_failed`` (the server says the request failed) or ``validation_error`` (an answer
    that cannot be used), for one poll of a pending request."""

    request_id: str
    request_type: str
    iteration: int  #: the poll that got this answer (0 first)
    status: int | None  #: HTTP status of the answer, if it was one
    category: str | None  #: ``RequestFailedError`` category ("user", "server", "unknown")
    error: str  #: class name of the error
    retrying: bool  #: polling goes on after it


# -- losses --------------------------------------------------------------------------------------


class StartMeasurements(TypedDict):
    """``*.start`` events of a computation: when it began (``time.time()``, seconds)."""

    system_time: float


class CustomLossMetadata(TypedDict):
    """``tinkex.custom_loss.start|stop``: how the loss is computed."""

    regularizer_count: int
    backend: str
    parallel: bool
    track_grad_norms: bool


class CustomLossMeasurements(TypedDict):
    """``tinkex.custom_loss.stop``: the totals and how long they took."""

    duration: float
    loss_total: float
    base_loss: float
    regularizer_total: float
    total_grad_norm: NotRequired[float]


class CustomLossExceptionMetadata(CustomLossMetadata):
    """``tinkex.custom_loss.exception`` (measurements: ``duration``): what failed."""

    error_type: str  #: exception class name
    error: str  #: its message


# ``tinkex.regularizer.compute.start|stop``: which regularizer, its backend as resolved ("numpy"
# or "torch"), whether it is async. "async" is a keyword, hence the functional form.
RegularizerMetadata = TypedDict("RegularizerMetadata", {"name": str, "backend": str, "async": bool})


class RegularizerMeasurements(TypedDict):
    """``tinkex.regularizer.compute.stop``: one regularizer's value and cost."""

    value: float
    contribution: float
    weight: float
    duration: float
    grad_norm: NotRequired[float]


class RegularizerExceptionMetadata(RegularizerMetadata):
    """``tinkex.regularizer.compute.exception`` (measurements: ``duration``): what failed.

    For async regularizers awaited together, a failure that cannot be told apart (a shared
    timeout) is reported once per regularizer still pending."""

    error_type: str
    error: str


# -- resilience ---------------------------------------------------------------------


class FailuresMeasurements(TypedDict):
    """``tinkex.circuit_breaker.state_change``: consecutive failures counted."""

    failures: float


# "from" is a keyword, hence the functional form.
CircuitBreakerMetadata = TypedDict("CircuitBreakerMetadata", {"name": str, "from": str, "to": str})


class EventSchema(TypedDict):
    """The TypedDicts of one event's ``measurements`` and ``metadata``."""

    measurements: type
    metadata: type


def _schema(measurements: type, metadata: type) -> EventSchema:
    return {"measurements": measurements, "metadata": metadata}


#: Event name -> its schema, for every event of the SDK core (recovery: see the docstring).
EVENT_SCHEMAS: Mapping[str, EventSchema] = {
    HTTP_REQUEST_START: _schema(NoMeasurements, HttpRequestMetadata),
    HTTP_REQUEST_STOP: _schema(DurationMeasurements, HttpRequestStopMetadata),
    HTTP_REQUEST_EXCEPTION: _schema(DurationMeasurements, HttpRequestExceptionMetadata),
    HTTP_RETRY: _schema(RetryMeasurements, RetryMetadata),
    RETRY_ATTEMPT_START: _schema(StartMeasurements, RetryAttemptMetadata),
    RETRY_ATTEMPT_STOP: _schema(DurationMeasurements, RetryAttemptMetadata),
    RETRY_ATTEMPT_FAILED: _schema(DurationMeasurements, RetryAttemptFailedMetadata),
    FUTURE_QUEUE_STATE: _schema(NoMeasurements, QueueStateMetadata),
    FUTURE_COMPLETE: _schema(FutureCompleteMeasurements, FutureCompleteMetadata),
    FUTURE_API_ERROR: _schema(FutureErrorMeasurements, FutureErrorMetadata),
    FUTURE_CONNECTION_ERROR: _schema(FutureErrorMeasurements, FutureErrorMetadata),
    FUTURE_REQUEST_FAILED: _schema(FutureErrorMeasurements, FutureErrorMetadata),
    FUTURE_VALIDATION_ERROR: _schema(FutureErrorMeasurements, FutureErrorMetadata),
    CUSTOM_LOSS_START: _schema(StartMeasurements, CustomLossMetadata),
    CUSTOM_LOSS_STOP: _schema(CustomLossMeasurements, CustomLossMetadata),
    CUSTOM_LOSS_EXCEPTION: _schema(DurationMeasurements, CustomLossExceptionMetadata),
    REGULARIZER_START: _schema(StartMeasurements, RegularizerMetadata),
    REGULARIZER_STOP: _schema(RegularizerMeasurements, RegularizerMetadata),
    REGULARIZER_EXCEPTION: _schema(DurationMeasurements, RegularizerExceptionMetadata),
    CIRCUIT_BREAKER_STATE_CHANGE: _schema(FailuresMeasurements, CircuitBreakerMetadata),
}

#: Every event name above, for handlers that want "all core events" without ``"*"``.
EVENTS: tuple[str, ...] = tuple(EVENT_SCHEMAS)
