"""The ``tinkex.http.request.*`` telemetry events of one HTTP attempt, for both transports.

Each attempt emits ``start`` (when anyone listens), then ``stop`` with the status and request id
when an answer came back, or ``exception`` with the error's type when none did. The metadata
(:func:`request_meta`) names the request, the public method it was made for and the call's
telemetry context (session, model, user metadata).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import cast

from tinkex.telemetry import (
    HTTP_REQUEST_EXCEPTION,
    HTTP_REQUEST_START,
    HTTP_REQUEST_STOP,
    HttpRequestExceptionMetadata,
    HttpRequestMetadata,
    HttpRequestStopMetadata,
    emit,
    has_handlers,
)
from tinkex.telemetry._context import call_context

__all__ = [
    "EXCEPTION_EVENT",
    "START_EVENT",
    "STOP_EVENT",
    "emit_exception",
    "emit_start",
    "emit_stop",
    "request_meta",
]

START_EVENT = HTTP_REQUEST_START
STOP_EVENT = HTTP_REQUEST_STOP
EXCEPTION_EVENT = HTTP_REQUEST_EXCEPTION


def request_meta(
    method: str, path: str, retry_count: int, headers: Mapping[str, str]
) -> HttpRequestMetadata:
    """The metadata of an HTTP event: the request, and what it was made for."""
    meta: HttpRequestMetadata = {"method": method, "path": path, "retry_count": retry_count}
    sdk_method = headers.get("x-sdk-method")
    if sdk_method is not None:
        meta["sdk_method"] = sdk_method
    meta.update(cast(HttpRequestMetadata, call_context()))
    return meta


def emit_start(method: str, path: str, retry_count: int, headers: Mapping[str, str]) -> bool:
    """Emit the start event when observed; whether the stop event is observed too."""
    observed = has_handlers(START_EVENT) or has_handlers(STOP_EVENT)
    if observed:
        emit(START_EVENT, {}, request_meta(method, path, retry_count, headers))
    return observed


def emit_stop(
    method: str,
    path: str,
    retry_count: int,
    headers: Mapping[str, str],
    status: int,
    request_id: str | None,
    duration: float,
) -> None:
    """Emit the stop event of an attempt that got an answer (call only when observed)."""
    stop = cast(HttpRequestStopMetadata, request_meta(method, path, retry_count, headers))
    stop["status"] = status
    stop["request_id"] = request_id
    emit(STOP_EVENT, {"duration": duration}, stop)


def emit_exception(
    method: str,
    path: str,
    retry_count: int,
    started: float,
    exc: BaseException,
    headers: Mapping[str, str],
) -> None:
    """Emit the exception event of an attempt that got no answer (``started``: perf_counter)."""
    if has_handlers(EXCEPTION_EVENT):
        meta = cast(HttpRequestExceptionMetadata, request_meta(method, path, retry_count, headers))
        meta["error"] = type(exc).__name__
        emit(EXCEPTION_EVENT, {"duration": time.perf_counter() - started}, meta)
