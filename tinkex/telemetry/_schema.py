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
``tinkex.future.queue_state``               the ``retrieve_future`` poller (queue-state reports)
``tinkex.future.complete``                  the poller, when it ends (any outcome)
``tinkex.custom_loss.compute``              ``tinkex.regularizers.compute_custom_loss``
``tinkex.regularizer.compute``              the same, once per regularizer
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
FUTURE_QUEUE_STATE = "tinkex.future.queue_state"
FUTURE_COMPLETE = "tinkex.future.complete"
CUSTOM_LOSS_COMPUTE = "tinkex.custom_loss.compute"
REGULARIZER_COMPUTE = "tinkex.regularizer.compute"
CIRCUIT_BREAKER_STATE_CHANGE = "tinkex.circuit_breaker.state_change"


class NoMeasurements(TypedDict):
    """Events that carry no numbers."""


# -- HTTP ----------------------------------------------------------------------------------------


class HttpRequestMetadata(TypedDict):
    """``tinkex.http.request.start``: one HTTP attempt begins."""

    method: str
    path: str
    retry_count: int  #: HTTP-layer retry number of this attempt (0 first)


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


# -- losses --------------------------------------------------------------------------------------


class CustomLossMeasurements(TypedDict):
    """``tinkex.custom_loss.compute``: values are absent when the computation failed."""

    duration: float
    loss_total: NotRequired[float]
    base_loss: NotRequired[float]
    regularizer_total: NotRequired[float]
    total_grad_norm: NotRequired[float]


class CustomLossMetadata(TypedDict):
    """``tinkex.custom_loss.compute``: how the loss was computed (``error*`` on failure)."""

    regularizer_count: int
    backend: str
    parallel: bool
    track_grad_norms: bool
    error_type: NotRequired[str]
    error: NotRequired[str]


class RegularizerMeasurements(TypedDict):
    """``tinkex.regularizer.compute``: one regularizer's value and cost."""

    value: float
    contribution: float
    weight: float
    duration: float
    grad_norm: NotRequired[float]


# "async" is a keyword, hence the functional form.
RegularizerMetadata = TypedDict("RegularizerMetadata", {"name": str, "backend": str, "async": bool})


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
    FUTURE_QUEUE_STATE: _schema(NoMeasurements, QueueStateMetadata),
    FUTURE_COMPLETE: _schema(FutureCompleteMeasurements, FutureCompleteMetadata),
    CUSTOM_LOSS_COMPUTE: _schema(CustomLossMeasurements, CustomLossMetadata),
    REGULARIZER_COMPUTE: _schema(RegularizerMeasurements, RegularizerMetadata),
    CIRCUIT_BREAKER_STATE_CHANGE: _schema(FailuresMeasurements, CircuitBreakerMetadata),
}

#: Every event name above, for handlers that want "all core events" without ``"*"``.
EVENTS: tuple[str, ...] = tuple(EVENT_SCHEMAS)
