"""A holder's telemetry wiring: its :class:`~tinkex.telemetry.Reporter` and what it reports.

When ``TINKER_TELEMETRY`` is on, each holder has one reporter that batches events to
``POST /api/v1/telemetry``. A session holder starts it with the session (``SESSION_START``);
a session-less one (RestClient/AdminClient), or a session holder that fails before its session
exists, on first use with a ``sessionless-<uuid>`` id. Reported here:

* the failure of a future the holder ran (``log_exception``: ``user_error`` or an error event);
* each failed attempt of a holder-level retry loop, as the official SDK's
  ``execute_with_retries`` reports it (a 402 pause is not reported);
* with ``settings.telemetry_events`` (off by default: the official SDK sends no such events),
  the HTTP requests and queue states of the session's own calls (``FORWARDED_EVENTS``), as
  Elixir Tinkex's reporter does; background traffic (heartbeats, telemetry) is not reported.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from concurrent.futures import CancelledError, Future
from typing import TYPE_CHECKING, Any

from tinkex._exceptions import BillingError
from tinkex._transport import NO_RETRY
from tinkex._transport.sdk_method import background
from tinkex._version import TINKER_SDK_VERSION
from tinkex.telemetry._schema import (
    FUTURE_QUEUE_STATE,
    HTTP_REQUEST_EXCEPTION,
    HTTP_REQUEST_START,
    HTTP_REQUEST_STOP,
)

if TYPE_CHECKING:
    from tinkex._config import ClientSettings
    from tinkex._transport import RetryPolicy, Transport
    from tinkex.telemetry import Reporter

__all__ = ["FORWARDED_EVENTS", "HolderTelemetry"]

logger = logging.getLogger("tinkex")

#: The in-process events a session reports with ``telemetry_events`` (Elixir Tinkex's
#: reporter defaults), and their severity.
FORWARDED_EVENTS: tuple[tuple[tuple[str, ...], str], ...] = (
    ((HTTP_REQUEST_START, HTTP_REQUEST_STOP, FUTURE_QUEUE_STATE), "INFO"),
    ((HTTP_REQUEST_EXCEPTION,), "WARNING"),
)


class HolderTelemetry:
    """The reporter of one holder (None when telemetry is off) and its failure reports."""

    def __init__(self, settings: ClientSettings, transport: Transport) -> None:
        self.enabled = settings.telemetry_enabled
        self._forward_events = settings.telemetry_events
        self._api_key = settings.api_key
        self._transport = transport
        self._lock = threading.Lock()
        self._closed = False
        self._reporter: Reporter | None = None

    def __repr__(self) -> str:
        state = "off" if not self.enabled else "started" if self._reporter else "not started"
        return f"HolderTelemetry({state}, closed={self._closed})"

    def reporter(self) -> Reporter | None:
        """The reporter, started session-less on first use; None when off or closed."""
        if not self.enabled:
            return None
        with self._lock:
            if self._reporter is None and not self._closed:
                self._reporter = self._new_reporter(None)
            return self._reporter

    def start_session(self, session_id: str) -> None:
        """Start the reporter of the new session ``session_id`` (unless one already runs);
        with ``settings.telemetry_events``, it reports the session's HTTP and queue events."""
        if not self.enabled:
            return
        with self._lock:
            if self._closed:
                return
            if self._reporter is None:
                self._reporter = self._new_reporter(session_id)
            if self._forward_events:
                for events, severity in FORWARDED_EVENTS:
                    self._reporter.forward(events, severity, session_id=session_id)

    def _new_reporter(self, session_id: str | None) -> Reporter:
        from tinkex.telemetry import Reporter

        transport = self._transport

        def send(payload: dict[str, Any]) -> None:
            with background():  # also when close() flushes it on the caller's thread
                transport.request(
                    "POST", "/api/v1/telemetry", json=payload, timeout=5.0, retry=NO_RETRY
                )

        return Reporter(
            send,
            session_id=session_id,
            sdk_version=TINKER_SDK_VERSION,
            secrets=[self._api_key],
            enabled=True,
        )

    def report_failure(self, future: Future[Any]) -> None:
        """A done-callback: report the future's exception (not a cancellation)."""
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            self.report_exception(exc)

    def report_exception(self, exc: BaseException) -> None:
        """Report the failure ``exc`` of a user's call (not a cancellation)."""
        if not self.enabled or isinstance(exc, CancelledError):
            return
        reporter = self.reporter()
        if reporter is not None:
            try:
                reporter.log_exception(exc)
            except Exception:
                logger.debug("could not report an exception to telemetry", exc_info=True)

    def report_attempt_failure(
        self, exc: Exception, label: str, policy: RetryPolicy, attempts: int, started: float
    ) -> None:
        """The warning event of one failed attempt ``attempts`` of the holder loop ``label``."""
        if not self.enabled or isinstance(exc, BillingError):
            return
        reporter = self.reporter()
        if reporter is None:
            return
        from tinkex.telemetry._reporter import _is_user_error

        retryable = policy.is_retryable(exc)
        user_error = _is_user_error(exc)
        now = time.time()
        reporter.log(
            "InternalClientHolder.execute_with_retries.exception",
            {
                "func": label,
                "exception": str(exc),
                "exception_type": type(exc).__name__,
                "exception_stack": "".join(traceback.format_exception(exc)),
                "status_code": getattr(exc, "status_code", None),
                "is_retryable": retryable,
                "is_user_error": user_error,
                "attempt_count": attempts,
                "start_time": started,
                "current_time": now,
                "elapsed_time": now - started,
            },
            severity="WARNING" if retryable or user_error else "ERROR",
        )

    def close(self) -> None:
        """Flush and stop the reporter (waiting at most 5 s); later ``reporter()`` is None."""
        with self._lock:
            self._closed = True
            reporter = self._reporter
        if reporter is not None:
            reporter.close(timeout=5.0)
