"""Batched delivery of SDK telemetry to ``POST /api/v1/telemetry`` (docs/protocol.md, "Telemetry").

The reporter knows the payload format and the batching/retry rules; it does not know HTTP.
Whoever owns the transport hands it a ``send(payload)`` callable, e.g.::

    reporter = Reporter(
        lambda payload: transport.request("POST", "/api/v1/telemetry", json=payload, timeout=5),
        session_id=session_id,
        secrets=[api_key],
    )
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as _dt
import logging
import math
import platform
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, Literal

import attrs

from tinkex._config import telemetry_enabled_from_env
from tinkex._transport.retry import RetryPolicy
from tinkex._version import TINKER_SDK_VERSION
from tinkex.telemetry._events import attach, detach
from tinkex.telemetry._scrub import scrub

logger = logging.getLogger("tinkex.telemetry.reporter")

Severity = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
SEVERITIES: frozenset[str] = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})

#: One id per interpreter process, sent with every batch as ``process_uuid``.
PROCESS_UUID = str(uuid.uuid4())
DEFAULT_SDK_VERSION = TINKER_SDK_VERSION


def _transient(exc: BaseException) -> bool:
    """Failures of ``send`` worth another attempt: anything but an HTTP answer (a dropped
    connection, a timeout); answers are judged by their status (408/409/429/5xx)."""
    from tinkex._exceptions import APIStatusError

    return not isinstance(exc, APIStatusError)


def _refusal(exc: BaseException) -> int | None:
    """The status when the server refuses telemetry from this client (401/403): later
    batches cannot succeed either."""
    status = getattr(exc, "status_code", None)
    return status if status in (401, 403) else None


def _summary(exc: BaseException) -> str:
    """What went wrong, in one line, without the answer's body (it may be a whole HTML page)."""
    status = getattr(exc, "status_code", None)
    if status is not None:
        request = getattr(exc, "request", None) or "POST /api/v1/telemetry"
        return f"{request} answered HTTP {status}"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:200]}"


def _timestamp() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_safe(value: Any) -> Any:
    """Turn ``value`` into something ``json.dumps`` accepts (unknown objects become ``repr``)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return repr(value)


def _is_user_error(exc: BaseException) -> bool:
    """4xx other than 408, and failures the server blames on the user, are not SDK bugs."""
    from tinkex._exceptions import APIStatusError, RequestErrorCategory, RequestFailedError

    if isinstance(exc, APIStatusError):
        return 400 <= exc.status_code < 500 and exc.status_code != 408
    if isinstance(exc, RequestFailedError):
        return exc.category == RequestErrorCategory.User
    return False


def _check_limits(
    flush_interval: float, max_batch: int, flush_threshold: int, max_retries: int
) -> None:
    """Reject reporter limits that cannot work, naming the argument and the value."""
    if flush_interval <= 0:
        raise ValueError(f"Reporter.flush_interval must be > 0, got {flush_interval}")
    if max_batch < 1:
        raise ValueError(f"Reporter.max_batch must be >= 1, got {max_batch}")
    if flush_threshold < 1:
        raise ValueError(f"Reporter.flush_threshold must be >= 1, got {flush_threshold}")
    if max_retries < 0:
        raise ValueError(f"Reporter.max_retries must be >= 0, got {max_retries}")


class Reporter:
    """Queues telemetry events and sends them in batches from a daemon thread.

    Events are sent as ``{"events": [...], "platform", "sdk_version", "session_id",
    "process_uuid"}`` through ``send`` (which raises on failure). A batch holds at most
    ``max_batch`` events; the thread flushes every ``flush_interval`` seconds, as soon as
    ``flush_threshold`` events are waiting, and right after an exception is logged. A send that
    failed transiently (connection error, 408/409/429/5xx) is retried ``max_retries`` times with
    exponential backoff, then dropped with a warning; other answers are not retried, and a
    401/403 stops delivery for good (the events are dropped). Once ``close()`` has begun, each
    batch gets one attempt and no back-off, so closing (and interpreter exit) is not delayed.
    Warnings name the failure, never the answer's body.
    API keys, JWTs, bearer tokens and the strings in ``secrets`` are masked in every event.

    With the kill switch ``TINKER_TELEMETRY=0`` (or ``enabled=False``) every method is a no-op
    and no thread starts.

    Args:
        send: delivers one payload; raising means the attempt failed.
        session_id: the Tinker session; ``None`` means session-less (``sessionless-<uuid>``,
            and no ``SESSION_START``). :meth:`start_session` sets it later.
        secrets: literal strings to mask (pass the API key).
        clock: monotonic seconds; used for the session duration.
        sleep: used between send retries (default: a wait that ends when closing begins).

    Use as a context manager: leaving the block flushes and closes; leaving it with an
    exception first reports the exception as fatal (with ``SESSION_END``).
    """

    def __init__(
        self,
        send: Callable[[dict[str, Any]], object],
        *,
        session_id: str | None = None,
        sdk_version: str = DEFAULT_SDK_VERSION,
        secrets: Iterable[str] = (),
        enabled: bool | None = None,
        flush_interval: float = 10.0,
        flush_threshold: int = 100,
        max_batch: int = 100,
        max_queue: int = 10_000,
        max_retries: int = 3,
        retry_base_delay: float = 0.5,
        retry_max_delay: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        _check_limits(flush_interval, max_batch, flush_threshold, max_retries)
        self._send = send
        self.enabled = telemetry_enabled_from_env() if enabled is None else enabled
        self.sdk_version = sdk_version
        self.session_id = session_id or f"sessionless-{uuid.uuid4()}"
        self._secrets = tuple(secret for secret in secrets if secret)
        self._flush_interval = flush_interval
        self._flush_threshold = flush_threshold
        self._max_batch = max_batch
        self._max_queue = max_queue
        self._max_retries = max_retries
        # Transient failures of ``send`` are retried, without telemetry events about telemetry;
        # once closing has begun, one attempt per batch (no exit delay).
        self._send_policy = RetryPolicy(
            name="telemetry",
            max_retries=max_retries,
            retry_if=_transient,
            backoff_initial=retry_base_delay,
            backoff_max=retry_max_delay,
            jitter=0.0,
        )
        self._closing_policy = attrs.evolve(self._send_policy, max_retries=0)
        self._closing = threading.Event()
        #: the status (401/403) with which the server refused telemetry; nothing is sent after
        self._refused: int | None = None
        self._clock = clock
        self._sleep = sleep if sleep is not None else self._closing.wait
        self._started_at = clock()

        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[dict[str, Any]] = deque()
        self._in_flight = 0
        self._index = 0
        self._closed = False
        self._session_ended = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._forward_ids: list[str] = []
        #: events dropped because the queue was full or every send attempt failed
        self.dropped = 0
        #: batches delivered
        self.sent_batches = 0
        self._thread: threading.Thread | None = None
        if self.enabled:
            self._start(announce_session=session_id is not None)

    def _start(self, *, announce_session: bool) -> None:
        """Start the sender thread (stopped by :meth:`close` or at exit); ``SESSION_START``
        first when the reporter belongs to a session."""
        self._thread = threading.Thread(
            target=self._run, name="tinkex-telemetry-reporter", daemon=True
        )
        self._thread.start()
        atexit.register(self._at_exit)
        if announce_session:
            self._enqueue(self._base("SESSION_START", "INFO"))

    # -- public API -------------------------------------------------------------------------

    def start_session(self, session_id: str) -> None:
        """Adopt ``session_id`` for later batches and log ``SESSION_START`` once."""
        if not self.enabled:
            return
        self.session_id = session_id
        self._started_at = self._clock()
        self._enqueue(self._base("SESSION_START", "INFO"))

    def log(
        self,
        event_name: str,
        event_data: Mapping[str, Any] | None = None,
        severity: Severity | str = "INFO",
    ) -> bool:
        """Queue a ``GENERIC_EVENT`` named ``event_name`` with ``event_data``; whether queued.

        Raises:
            ValueError: ``severity`` is not one of DEBUG/INFO/WARNING/ERROR/CRITICAL.
        """
        level = self._severity(severity)
        if not self.enabled:
            return False
        event = self._base("GENERIC_EVENT", level)
        event["event_name"] = event_name
        event["event_data"] = _json_safe(dict(event_data or {}))
        return self._enqueue(event)

    def log_exception(
        self,
        exception: BaseException,
        severity: Severity | str = "ERROR",
        *,
        fatal: bool = False,
        timeout: float = 5.0,
    ) -> bool:
        """Report ``exc`` with its traceback and cause chain, then flush.

        User errors (HTTP 4xx other than 408, ``RequestFailedError`` with category ``user``)
        become a ``GENERIC_EVENT`` named ``user_error``; anything else an
        ``UNHANDLED_EXCEPTION``. With ``fatal=True`` a ``SESSION_END`` follows and the call
        blocks until the queue is drained or ``timeout`` passes.
        """
        exc = exception
        level = self._severity(severity)
        if not self.enabled:
            return False
        if _is_user_error(exc):
            event = self._base("GENERIC_EVENT", "WARNING" if level == "ERROR" else level)
            event["event_name"] = "user_error"
            data: dict[str, Any] = {"error_type": type(exc).__name__, "message": str(exc)}
            status = getattr(exc, "status_code", None)
            if status is not None:
                data["status_code"] = status
            body = getattr(exc, "body", None)
            if body is not None:
                data["body"] = body
            event["event_data"] = _json_safe(data)
        else:
            event = self._base("UNHANDLED_EXCEPTION", level)
            event["error_type"] = type(exc).__name__
            event["error_message"] = str(exc)
            # format_exception follows __cause__/__context__, so the chain is in the text.
            event["traceback"] = "".join(traceback.format_exception(exc))
        queued = self._enqueue(event, flush_now=True)
        if fatal:
            self._end_session()
            self.wait_until_drained(timeout)
        return queued

    def log_fatal_exception(
        self,
        exception: BaseException,
        severity: Severity | str = "ERROR",
        timeout: float = 5.0,
    ) -> bool:
        """Report ``exception`` plus ``SESSION_END`` and wait (up to ``timeout``) for delivery."""
        return self.log_exception(exception, severity, fatal=True, timeout=timeout)

    # Names of the official SDK's Telemetry: its ``log_exception`` is async and these are the
    # blocking twins; here every method already returns after queueing (and flushing).
    def log_exception_sync(
        self, exception: BaseException, severity: Severity | str = "ERROR"
    ) -> bool:
        """Same as :meth:`log_exception` (kept for code written against ``tinker``)."""
        return self.log_exception(exception, severity)

    def log_fatal_exception_sync(
        self, exception: BaseException, severity: Severity | str = "ERROR"
    ) -> bool:
        """Same as :meth:`log_fatal_exception` (kept for code written against ``tinker``)."""
        return self.log_fatal_exception(exception, severity)

    @contextlib.contextmanager
    def capture_exceptions(
        self, fatal: bool = False, severity: Severity | str = "ERROR"
    ) -> Iterator[None]:
        """Report an exception escaping the block (then re-raise it).

        Example::

            with service.get_telemetry().capture_exceptions(fatal=True):
                train()
        """
        try:
            yield
        except Exception as exc:
            self._report_escaped(exc, fatal, severity)
            raise

    @contextlib.asynccontextmanager
    async def acapture_exceptions(
        self, fatal: bool = False, severity: Severity | str = "ERROR"
    ) -> AsyncIterator[None]:
        """Async twin of :meth:`capture_exceptions`."""
        try:
            yield
        except Exception as exc:
            self._report_escaped(exc, fatal, severity)
            raise

    def _report_escaped(self, exc: Exception, fatal: bool, severity: Severity | str) -> None:
        if fatal:
            self.log_fatal_exception(exc, severity)
        else:
            self.log_exception(exc, severity)

    def stop(self) -> None:
        """Same as :meth:`close` (the official SDK's name)."""
        self.close()

    def forward(
        self,
        events: str | list[str] | tuple[str, ...],
        severity: Severity | str = "INFO",
        *,
        session_id: str | None = None,
    ) -> str:
        """Also report the in-process telemetry ``events`` as ``GENERIC_EVENT`` s.

        With ``session_id``, only the events of that session's calls: those whose metadata,
        or the public call emitting them (:func:`tinkex.telemetry._context.call_context`),
        names it. Returns the handler id; :meth:`close` detaches it.
        """
        from tinkex.telemetry._context import call_context

        level = self._severity(severity)
        handler_id = f"tinkex.reporter.{id(self)}.{len(self._forward_ids)}"

        def handle(
            event: str, measurements: Mapping[str, float], metadata: Mapping[str, Any]
        ) -> None:
            # Events raised while this reporter sends (its own HTTP request) are not reported,
            # or every flush would queue telemetry about telemetry.
            if threading.current_thread() is self._thread:
                return
            if session_id is not None:
                of = metadata.get("session_id") or call_context().get("session_id")
                if of != session_id:
                    return
            self.log(event, {**metadata, **measurements}, level)

        attach(handler_id, events, handle)
        self._forward_ids.append(handler_id)
        return handler_id

    def flush(self) -> None:
        """Ask the background thread to send everything queued now (does not wait)."""
        self._wake.set()

    def wait_until_drained(self, timeout: float | None = None) -> bool:
        """Flush and block until nothing is queued or in flight; ``False`` on timeout."""
        if not self.enabled:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        self._wake.set()
        with self._cond:
            while self._queue or self._in_flight:
                if self._thread is None or not self._thread.is_alive():
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    @property
    def pending(self) -> int:
        """Events queued or being sent."""
        with self._cond:
            return len(self._queue) + self._in_flight

    def close(self, timeout: float = 5.0) -> bool:
        """Flush what is queued (waiting at most ``timeout`` s), stop the thread, detach hooks.

        Idempotent. Returns whether everything was delivered.
        """
        for handler_id in self._forward_ids:
            detach(handler_id)
        self._forward_ids.clear()
        if not self.enabled or self._thread is None:
            return True
        self._closing.set()
        drained = True
        if threading.current_thread() is self._thread:  # closing from inside send()
            with self._cond:
                self._closed = True
            self._stop.set()
            return False
        if not self._closed:
            drained = self.wait_until_drained(timeout)
            with self._cond:
                self._closed = True
            self._stop.set()
            self._wake.set()
            self._thread.join(timeout=max(0.0, timeout))
        atexit.unregister(self._at_exit)
        return drained

    def __enter__(self) -> Reporter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and not isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
            self.log_fatal_exception(exc)
        self.close()

    # -- internals --------------------------------------------------------------------------

    def _severity(self, severity: str) -> str:
        level = str(severity).upper()
        if level not in SEVERITIES:
            raise ValueError(
                f"telemetry severity must be one of {sorted(SEVERITIES)}, got {severity!r}"
            )
        return level

    def _base(self, kind: str, severity: str) -> dict[str, Any]:
        return {
            "event": kind,
            "event_id": str(uuid.uuid4()),
            "event_session_index": 0,  # assigned under the lock in _enqueue
            "severity": severity,
            "timestamp": _timestamp(),
        }

    def _end_session(self) -> None:
        if self._session_ended:
            return
        self._session_ended = True
        event = self._base("SESSION_END", "INFO")
        event["duration"] = str(_dt.timedelta(seconds=max(0.0, self._clock() - self._started_at)))
        self._enqueue(event, flush_now=True)

    def _enqueue(self, event: dict[str, Any], *, flush_now: bool = False) -> bool:
        clean: dict[str, Any] = scrub(event, self._secrets)
        with self._cond:
            if self._closed:
                return False
            if len(self._queue) >= self._max_queue:
                self.dropped += 1
                if self.dropped == 1:
                    logger.warning(
                        "telemetry queue is full (%d events); dropping new events", self._max_queue
                    )
                return False
            clean["event_session_index"] = self._index
            self._index += 1
            self._queue.append(clean)
            wake = flush_now or len(self._queue) >= self._flush_threshold
        if wake:
            self._wake.set()
        return True

    def _run(self) -> None:
        while True:
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            self._drain()
            if self._stop.is_set():
                self._drain()
                with self._cond:
                    self._cond.notify_all()
                return

    def _drain(self) -> None:
        while True:
            with self._cond:
                if not self._queue:
                    self._cond.notify_all()
                    return
                count = min(self._max_batch, len(self._queue))
                batch = [self._queue.popleft() for _ in range(count)]
                self._in_flight += count
            try:
                self._deliver(batch)
            finally:
                with self._cond:
                    self._in_flight -= count
                    self._cond.notify_all()

    def _payload(self, batch: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "events": batch,
            "platform": platform.system(),
            "sdk_version": self.sdk_version,
            "session_id": self.session_id,
            "process_uuid": PROCESS_UUID,
        }

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        if self._refused is not None:
            with self._cond:
                self.dropped += len(batch)
            return
        payload = self._payload(batch)
        attempts = 0

        def attempt() -> object:
            nonlocal attempts
            attempts += 1
            return self._send(payload)

        policy = self._closing_policy if self._closing.is_set() else self._send_policy
        try:
            policy.run(attempt, describe="telemetry batch", sleep=self._sleep, event=None)
        except Exception as exc:
            with self._cond:
                self.dropped += len(batch)
            self._refused = _refusal(exc)
            if self._refused is not None:
                logger.warning(
                    "dropping %d telemetry events: %s (the API key is not accepted for "
                    "telemetry); no more telemetry is sent by this client",
                    len(batch),
                    _summary(exc),
                )
                return
            logger.warning(
                "dropping %d telemetry events after %d failed attempt%s: %s",
                len(batch),
                attempts,
                "" if attempts == 1 else "s",
                _summary(exc),
            )
            return
        with self._cond:
            self.sent_batches += 1

    def _at_exit(self) -> None:
        self._closing.set()
        self.close(timeout=2.0)
