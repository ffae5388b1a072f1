"""Telemetry hooks: attach handlers to named events that tinkex emits.

This package is importable cheaply from every layer (transport, futures, clients); it
imports nothing beyond the standard library. ``emit`` is a no-op when no handler is attached
to the event. Every event tinkex emits and the keys of its two payloads are listed in
:data:`EVENT_SCHEMAS` (one pair of TypedDicts per event name). :class:`Reporter` (batched
delivery to ``POST /api/v1/telemetry``) is loaded on first access.

>>> from tinkex import telemetry
>>> hid = telemetry.attach_logger(level="INFO")
>>> telemetry.detach(hid)
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinkex._lazy import lazy_exports
from tinkex.telemetry._context import metadata
from tinkex.telemetry._events import (
    Handler,
    attach,
    attach_logger,
    attached,
    detach,
    emit,
    has_handlers,
)
from tinkex.telemetry._schema import (
    CIRCUIT_BREAKER_STATE_CHANGE,
    CUSTOM_LOSS_EXCEPTION,
    CUSTOM_LOSS_START,
    CUSTOM_LOSS_STOP,
    EVENT_SCHEMAS,
    EVENTS,
    FUTURE_API_ERROR,
    FUTURE_COMPLETE,
    FUTURE_CONNECTION_ERROR,
    FUTURE_QUEUE_STATE,
    FUTURE_REQUEST_FAILED,
    FUTURE_VALIDATION_ERROR,
    HTTP_REQUEST_EXCEPTION,
    HTTP_REQUEST_START,
    HTTP_REQUEST_STOP,
    HTTP_RETRY,
    REGULARIZER_EXCEPTION,
    REGULARIZER_START,
    REGULARIZER_STOP,
    RETRY_ATTEMPT_FAILED,
    RETRY_ATTEMPT_START,
    RETRY_ATTEMPT_STOP,
    CircuitBreakerMetadata,
    CustomLossExceptionMetadata,
    CustomLossMeasurements,
    CustomLossMetadata,
    EventSchema,
    FutureCompleteMeasurements,
    FutureCompleteMetadata,
    FutureErrorMeasurements,
    FutureErrorMetadata,
    HttpRequestExceptionMetadata,
    HttpRequestMetadata,
    HttpRequestStopMetadata,
    QueueStateMetadata,
    RegularizerExceptionMetadata,
    RegularizerMeasurements,
    RegularizerMetadata,
    RetryAttemptFailedMetadata,
    RetryAttemptMetadata,
    RetryMeasurements,
    RetryMetadata,
    StartMeasurements,
)

if TYPE_CHECKING:  # pragma: no cover
    from tinkex._config import telemetry_enabled_from_env
    from tinkex.telemetry._reporter import Reporter
    from tinkex.telemetry._scrub import scrub, scrub_text

__all__ = [
    "CIRCUIT_BREAKER_STATE_CHANGE",
    "CUSTOM_LOSS_EXCEPTION",
    "CUSTOM_LOSS_START",
    "CUSTOM_LOSS_STOP",
    "EVENTS",
    "EVENT_SCHEMAS",
    "FUTURE_API_ERROR",
    "FUTURE_COMPLETE",
    "FUTURE_CONNECTION_ERROR",
    "FUTURE_QUEUE_STATE",
    "FUTURE_REQUEST_FAILED",
    "FUTURE_VALIDATION_ERROR",
    "HTTP_REQUEST_EXCEPTION",
    "HTTP_REQUEST_START",
    "HTTP_REQUEST_STOP",
    "HTTP_RETRY",
    "REGULARIZER_EXCEPTION",
    "REGULARIZER_START",
    "REGULARIZER_STOP",
    "RETRY_ATTEMPT_FAILED",
    "RETRY_ATTEMPT_START",
    "RETRY_ATTEMPT_STOP",
    "CircuitBreakerMetadata",
    "CustomLossExceptionMetadata",
    "CustomLossMeasurements",
    "CustomLossMetadata",
    "EventSchema",
    "FutureCompleteMeasurements",
    "FutureCompleteMetadata",
    "FutureErrorMeasurements",
    "FutureErrorMetadata",
    "Handler",
    "HttpRequestExceptionMetadata",
    "HttpRequestMetadata",
    "HttpRequestStopMetadata",
    "QueueStateMetadata",
    "RegularizerExceptionMetadata",
    "RegularizerMeasurements",
    "RegularizerMetadata",
    "RetryAttemptFailedMetadata",
    "RetryAttemptMetadata",
    "Reporter",
    "RetryMeasurements",
    "RetryMetadata",
    "StartMeasurements",
    "attach",
    "attach_logger",
    "attached",
    "detach",
    "emit",
    "has_handlers",
    "metadata",
    "scrub",
    "scrub_text",
    "telemetry_enabled_from_env",
]

# The reporter pulls in uuid/platform/traceback and the scrubber compiles regexes; load them only
# when someone asks.
_LAZY = {
    "Reporter": "tinkex.telemetry._reporter",
    "telemetry_enabled_from_env": "tinkex._config",
    "scrub": "tinkex.telemetry._scrub",
    "scrub_text": "tinkex.telemetry._scrub",
}

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
