"""The client holder: settings, transport, worker threads, server config and the session.

Every public client is thin: it validates its arguments, builds a request type and hands the
work to its :class:`ClientHolder`, which owns

* the resolved :class:`~tinkex._config.ClientSettings` and the shared ``Transport``;
* the worker pools (daemon threads; see ``tinkex._executor``);
* the server's client config (``POST /api/v1/client/config``, fetched once);
* the session (created on first need) and its heartbeat thread (every 10 s);
* the per-session counters (``model_seq_id``, ``sampling_session_seq_id``).

``close(status, detail)`` finishes the session server-side, stops the heartbeat, wakes every
poller (they raise ``CancelledError``) and shuts the pools down. Closing twice is harmless.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import threading
import time
import traceback
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import CancelledError, Future
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from tinkex._config import ClientSettings, configure_logging
from tinkex._exceptions import APIStatusError, BillingError, TinkerError
from tinkex._executor import DaemonThreadPoolExecutor
from tinkex._futures import APIFuture
from tinkex._poller import poll_future
from tinkex._transport import (
    HTTP_DEFAULT,
    NO_RETRY,
    BytesSemaphore,
    Response,
    RetryPolicy,
    Transport,
    holder_retry_policy,
)
from tinkex._transport.retry import BILLING_MAX_PAUSE
from tinkex._transport.sdk_method import background, current_sdk_method
from tinkex._version import TINKER_SDK_VERSION
from tinkex.clients._sample_backoff import SampleBackoff
from tinkex.types import _session as ses
from tinkex.types._converter import from_wire, to_wire

if TYPE_CHECKING:
    from tinkex._ioloop import IOLoop
    from tinkex._transport.aio import AsyncTransport
    from tinkex.telemetry import Reporter

__all__ = ["ClientHolder", "PerAttempt", "SessionStatusName"]

logger = logging.getLogger("tinkex")
T = TypeVar("T")

SessionStatusName = str  # "success" | "errored" | "interrupted"
HEARTBEAT_INTERVAL = 10.0
#: Sampling workers started up front when the sampling pool is created (the rest on demand).
SAMPLE_PRESTART = 128
_HEARTBEAT_WARN_AFTER = 120.0
#: Read timeout of ``sessions/{id}/finish``, as in the official SDK (its default).
FINISH_TIMEOUT = 60.0
#: The dynamic config is refreshed at most this often, whatever the server asks.
DYNAMIC_CONFIG_MIN_REFRESH = 10.0
#: Seconds spent trying to cancel an abandoned sample server-side.
CANCEL_BUDGET = 30.0


@attrs.frozen
class PerAttempt:
    """A request body built anew (``build()``, a JSON value) for each attempt of a call."""

    build: Callable[[], Any]


class ClientHolder:
    """Shared machinery of the clients of one ServiceClient (or one RestClient).

    Args:
        settings: resolved client settings.
        user_metadata, project_id, display_name: sent with ``create_session``.
        with_session: False for session-less holders (RestClient/AdminClient).
        workers: size of the general worker pool (training, REST, pollers).
        sample_workers: size of the sampling pool when samples use worker threads
            (``settings.sampling_io == "threads"``): one thread per in-flight sample, so this is
            the sampling concurrency (like ``RetryConfig.max_connections``, default 1000);
            ``SAMPLE_PRESTART`` of them start when the pool is created, the rest on demand.
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        user_metadata: Mapping[str, str] | None = None,
        project_id: str | None = None,
        display_name: str | None = None,
        with_session: bool = True,
        workers: int = 64,
        sample_workers: int = 1000,
    ) -> None:
        self.settings = settings
        # TINKER_LOG=debug|info|warning|error; a header dump is INFO, so it turns INFO on
        configure_logging(settings.log_level or ("info" if settings.dump_headers else None))
        self.transport = Transport.shared(settings)
        self.user_metadata = dict(user_metadata or {})
        self.project_id = project_id if project_id is not None else settings.project_id
        self.display_name = display_name
        self.with_session = with_session
        self._workers = workers
        self._sample_workers = sample_workers
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._executor: DaemonThreadPoolExecutor | None = None
        self._sample_executor: DaemonThreadPoolExecutor | None = None
        self._config: ses.ClientConfigResponse | None = None
        self._dynamic: ses.ClientDynamicConfigResponse | None = None
        self._dynamic_fetched = 0.0
        self._session_id: str | None = None
        self._heartbeat: threading.Thread | None = None
        self._model_seq = itertools.count()
        self._sampling_seq = itertools.count()
        self._closed = False
        self._fwdbwd_bytes: BytesSemaphore | None = None
        self._sample_bytes: BytesSemaphore | None = None
        self._response_bytes: BytesSemaphore | None = None
        self._sample_backoff: SampleBackoff | None = None
        self._on_close: list[Callable[[], None]] = []
        self._reporter: Reporter | None = None
        self._io: tuple[IOLoop, AsyncTransport] | None = None
        self._io_checked = False

    def on_close(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` when the holder closes (owners of threads register here)."""
        with self._lock:
            self._on_close.append(callback)

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True after ``close()``."""
        return self._closed

    @property
    def stop_event(self) -> threading.Event:
        """Set on close; pollers and retry loops stop at their next step."""
        return self._stop

    def check_open(self) -> None:
        """RuntimeError when the client was closed."""
        if self._closed:
            raise RuntimeError("this client was closed; create a new ServiceClient")

    def close(self, status: SessionStatusName = "success", detail: str | None = None) -> None:
        """Finish the session (if any), stop background threads and worker pools."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            session_id = self._session_id
        try:
            if session_id is not None:
                # ``detail`` is always present (null when None), as the official SDK sends it.
                body: dict[str, Any] = {"reason": {"type": status}, "detail": detail}
                self.transport.request(
                    "POST",
                    f"/api/v1/sessions/{session_id}/finish",
                    json=body,
                    timeout=FINISH_TIMEOUT,
                    retry=holder_retry_policy(max_elapsed=30.0),
                )
        finally:
            self._stop.set()
            for callback in self._on_close:
                callback()
            if self._reporter is not None:
                self._reporter.close(timeout=5.0)
            if self._io is not None:
                self._io[0].close()
            for pool in (self._executor, self._sample_executor):
                if pool is not None:
                    pool.close()
            if self._heartbeat is not None:
                self._heartbeat.join(timeout=5.0)

    # -- executors -------------------------------------------------------------------------------
    def _pool(self, sampling: bool) -> DaemonThreadPoolExecutor:
        with self._lock:
            self.check_open()
            if sampling:
                if self._sample_executor is None:
                    pool = DaemonThreadPoolExecutor(self._sample_workers, "tinkex-sample")
                    self._sample_executor = pool
                    # Sampling comes in bursts (fan-out): start the workers off the caller's
                    # path instead of one per submission during the burst.
                    threading.Thread(
                        target=pool.prestart,
                        args=(SAMPLE_PRESTART,),
                        name="tinkex-sample-prestart",
                        daemon=True,
                    ).start()
                return self._sample_executor
            if self._executor is None:
                self._executor = DaemonThreadPoolExecutor(self._workers, "tinkex-worker")
            return self._executor

    def io(self) -> tuple[IOLoop, AsyncTransport] | None:
        """The I/O loop in-flight samples wait on, and the transport's requests over it.

        Created on first use; None when ``settings.sampling_io`` is ``"threads"`` or the
        transport cannot go over asyncio (a proxy, see ``tinkex._transport.aio.supports``):
        samples then hold a worker thread each.
        """
        with self._lock:
            self.check_open()
            if self._io is None and not self._io_checked:
                self._io_checked = True
                from tinkex._ioloop import IOLoop
                from tinkex._transport.aio import AsyncTransport, supports

                why = supports(self.transport)
                if self.settings.sampling_io != "asyncio" or why is not None:
                    logger.debug("samples use worker threads: %s", why or "sampling_io=threads")
                    return None
                loop = IOLoop("tinkex-io")
                aio = AsyncTransport(self.transport, self.settings.max_connections)
                loop.on_close(aio.close)
                self._io = (loop, aio)
            return self._io

    def spawn(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> APIFuture[T]:
        """Run the coroutine ``fn(*args)`` on the I/O loop (see :meth:`io`); its future.

        A failure is also reported to the server's telemetry (when enabled).

        Raises:
            RuntimeError: the holder is closed, or has no I/O loop (``io()`` is None).
        """
        io = self.io()
        if io is None:
            raise RuntimeError("this client samples on worker threads (no I/O loop)")
        future = io[0].spawn(fn, *args)
        if self.settings.telemetry_enabled:
            future.add_done_callback(self._report_failure)
        return future

    def run(self, fn: Callable[..., T], *args: Any, sampling: bool = False) -> APIFuture[T]:
        """Run ``fn(*args)`` on a worker thread; the returned future mirrors it.

        A failure is also reported to the server's telemetry (when enabled).
        """
        # The job runs in the caller's context, so its requests report the public method that
        # queued it (tinkex._transport.sdk_method).
        context = contextvars.copy_context()
        future = APIFuture.run(self._pool(sampling), context.run, fn, *args)
        if self.settings.telemetry_enabled:
            future.add_done_callback(self._report_failure)
        return future

    # -- telemetry -------------------------------------------------------------------------------
    def telemetry(self) -> Reporter | None:
        """The telemetry reporter of this holder (None when ``TINKER_TELEMETRY`` is off).

        Session holders start it with the session (``SESSION_START``); session-less holders
        (RestClient/AdminClient) on first use, with a ``sessionless-<uuid>`` id.
        """
        if not self.settings.telemetry_enabled:
            return None
        with self._lock:
            if self._reporter is None and not self._closed:
                self._reporter = self._new_reporter(None)
            return self._reporter

    def _new_reporter(self, session_id: str | None) -> Reporter:
        from tinkex.telemetry import Reporter

        transport = self.transport

        def send(payload: dict[str, Any]) -> None:
            with background():  # also when close() flushes it on the caller's thread
                transport.request(
                    "POST", "/api/v1/telemetry", json=payload, timeout=5.0, retry=NO_RETRY
                )

        return Reporter(
            send,
            session_id=session_id,
            sdk_version=TINKER_SDK_VERSION,
            secrets=[self.settings.api_key],
            enabled=True,
        )

    def _report_failure(self, future: Future[Any]) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if exc is None or isinstance(exc, CancelledError):
            return
        reporter = self._reporter if self._session_id is not None else self.telemetry()
        if reporter is not None:
            try:
                reporter.log_exception(exc)
            except Exception:
                logger.debug("could not report an exception to telemetry", exc_info=True)

    # -- HTTP helpers ---------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
        params: Mapping[str, Any] | None = None,
        sdk_method: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        http_retry: RetryPolicy = HTTP_DEFAULT,
    ) -> Response:
        """One call under the holder retry policy (``retry`` overrides it); layer 2 of
        docs/protocol.md, "Retries".

        The body is ``json`` or raw ``content`` of ``content_type``; ``json`` may be a
        :class:`PerAttempt` to build the body anew for each attempt. ``http_retry`` is the
        transport's own (layer-1) policy inside that loop.
        """
        all_headers = dict(headers or {})
        if sdk_method is not None and current_sdk_method() is None:
            all_headers["x-sdk-version"] = TINKER_SDK_VERSION
            all_headers["x-sdk-method"] = sdk_method
        policy = retry if retry is not None else self.holder_policy()
        label = f"{method} {path}"
        started = time.time()
        attempts = 0

        def attempt() -> Response:
            nonlocal attempts
            try:
                return self.transport.request(
                    method,
                    path,
                    json=json.build() if isinstance(json, PerAttempt) else json,
                    content=content,
                    content_type=content_type,
                    params=params,
                    headers=all_headers,
                    timeout=timeout,
                    retry=http_retry,
                    stop=self._stop,
                )
            except Exception as exc:
                self._report_attempt_failure(exc, label, policy, attempts, started)
                attempts += 1
                raise

        return policy.run(attempt, stop_event=self._stop, describe=label)

    def _report_attempt_failure(
        self, exc: Exception, label: str, policy: RetryPolicy, attempts: int, started: float
    ) -> None:
        """The telemetry warning of one failed attempt of the holder loop, as the official
        SDK's ``execute_with_retries`` sends it (a 402 pause is not reported)."""
        if not self.settings.telemetry_enabled or isinstance(exc, BillingError):
            return
        reporter = self._reporter if self._session_id is not None else self.telemetry()
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

    def call(
        self,
        method: str,
        path: str,
        cls: type[T],
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        sdk_method: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> T:
        """Send ``body`` (a tinkex type or JSON value) and parse the answer as ``cls``."""
        json = None if body is None else to_wire(body)
        response = self.request(
            method, path, json=json, params=params, sdk_method=sdk_method, retry=retry
        )
        return from_wire(response.json(), cls, request=f"{method} {path}")

    def holder_policy(self) -> RetryPolicy:
        """The layer-2 retry policy with the server's billing pause budget."""
        config = self._config
        max_pause = config.billing_exception_max_pause_duration_sec if config else BILLING_MAX_PAUSE
        return holder_retry_policy(billing_max_pause=float(max_pause))

    def submit_and_poll(
        self,
        path: str,
        body: Any,
        *,
        request_type: str,
        decode: Callable[[Response], T],
        sdk_method: str | None = None,
        retry: RetryPolicy | None = None,
        on_queue_state: Callable[..., None] | None = None,
    ) -> T:
        """POST a future-returning request, then poll ``retrieve_future`` for its result."""
        untyped, roundtrip = self.submit(path, body, sdk_method=sdk_method, retry=retry)
        return self.poll(
            untyped,
            request_type=request_type,
            decode=decode,
            on_queue_state=on_queue_state,
            create_roundtrip_time=roundtrip,
        )

    def submit(
        self,
        path: str,
        body: Any,
        *,
        sdk_method: str | None = None,
        retry: RetryPolicy | None = None,
        content: bytes | None = None,
        content_type: str | None = None,
        content_encoding: str | None = None,
        http_retry: RetryPolicy = HTTP_DEFAULT,
    ) -> tuple[ses.UntypedAPIFuture, float]:
        """POST a future-returning request; returns its handle and the round-trip seconds."""
        started = time.monotonic()
        headers = {"Content-Encoding": content_encoding} if content_encoding else None
        json = None
        if content is None:
            json = body if isinstance(body, dict | PerAttempt) else to_wire(body)
        response = self.request(
            "POST",
            path,
            json=json,
            content=content,
            content_type=content_type,
            headers=headers,
            sdk_method=sdk_method,
            retry=retry,
            http_retry=http_retry,
        )
        untyped = from_wire(response.json(), ses.UntypedAPIFuture, request=f"POST {path}")
        return untyped, time.monotonic() - started

    def submit_per_attempt(
        self,
        path: str,
        build: Callable[[], Any],
        *,
        sdk_method: str | None = None,
        http_retry: RetryPolicy = HTTP_DEFAULT,
    ) -> tuple[ses.UntypedAPIFuture, float]:
        """``submit`` with a body built by ``build()`` for each holder-level attempt.

        For requests that allocate a counter inside the retried call, as the official SDK
        does (the unnamed ``save_weights_for_sampler`` takes a new
        ``sampling_session_seq_id`` per attempt; issue 11.1).
        """
        return self.submit(
            path, PerAttempt(lambda: to_wire(build())), sdk_method=sdk_method, http_retry=http_retry
        )

    def poll(
        self,
        untyped: ses.UntypedAPIFuture,
        *,
        request_type: str,
        decode: Callable[[Response], T],
        on_queue_state: Callable[..., None] | None = None,
        create_roundtrip_time: float | None = None,
    ) -> T:
        """Poll the result of a submitted request."""
        config = self.client_config()
        return poll_future(
            self.transport,
            untyped.request_id,
            request_type=request_type,
            decode=decode,
            stop=self._stop,
            on_queue_state=on_queue_state,
            create_roundtrip_time=create_roundtrip_time,
            response_bytes=self.response_bytes(),
            billing_max_pause=float(config.billing_exception_max_pause_duration_sec),
        )

    # -- server config and session ------------------------------------------------------------
    def client_config(self) -> ses.ClientConfigResponse:
        """The server's client config, fetched once (mandatory; docs/protocol.md, "Life cycle")."""
        config = self._config
        if config is not None:
            return config
        with self._lock, background():
            if self._config is None:
                config = self.call(
                    "POST",
                    "/api/v1/client/config",
                    ses.ClientConfigResponse,
                    body={"sdk_version": TINKER_SDK_VERSION},
                )
                if config.pjwt_auth_enabled:
                    self.transport.use_jwt(
                        use_credential_cmd=config.credential_default_source == "credential_cmd"
                    )
                self._config = config
                self._refresh_dynamic_config()
            return self._config

    # -- dynamic config (docs/protocol.md, "Life cycle") ---------------------------------------
    def dynamic_config(self) -> ses.ClientDynamicConfigResponse:
        """The server's dynamic flags: fetched after the client config, refreshed by the
        heartbeat thread every ``max(refresh_interval_sec, 10)`` s; defaults when the server
        has no such endpoint."""
        dynamic = self._dynamic
        if dynamic is None:
            with self._lock:
                if self._dynamic is None:
                    self._refresh_dynamic_config()
                dynamic = self._dynamic
        assert dynamic is not None
        return dynamic

    def _dynamic_config_stale(self) -> bool:
        dynamic = self._dynamic
        if dynamic is None:
            return True
        interval = max(float(dynamic.refresh_interval_sec), DYNAMIC_CONFIG_MIN_REFRESH)
        return time.monotonic() - self._dynamic_fetched >= interval

    def _refresh_dynamic_config(self) -> None:
        """One ``POST /api/v1/client/dynamic_config`` (10 s, no retries); a failure keeps the
        flags known so far (the defaults at first)."""
        with background():
            try:
                response = self.transport.request(
                    "POST",
                    "/api/v1/client/dynamic_config",
                    json={"sdk_version": TINKER_SDK_VERSION},
                    timeout=10.0,
                    retry=NO_RETRY,
                    stop=self._stop,
                )
                dynamic = from_wire(
                    response.json() or {},
                    ses.ClientDynamicConfigResponse,
                    request="POST /api/v1/client/dynamic_config",
                )
            except Exception as exc:
                logger.debug("dynamic client config not refreshed: %s", exc)
                if self._dynamic is None:
                    self._dynamic = ses.ClientDynamicConfigResponse()
            else:
                if self._dynamic is not None and dynamic != self._dynamic:
                    logger.debug("dynamic client config changed: %s", to_wire(dynamic))
                self._dynamic = dynamic
            self._dynamic_fetched = time.monotonic()

    def cancel_sample(self, request_id: str) -> None:
        """Tell the server to stop an abandoned sample (when the dynamic config says
        ``sample_cancel_enabled``); best effort, for at most ``CANCEL_BUDGET`` seconds."""
        if self._stop.is_set() or not self.dynamic_config().sample_cancel_enabled:
            return
        try:
            with background():
                self.request(
                    "POST",
                    "/api/v1/cancel_future",
                    json={"request_id": request_id},
                    timeout=30.0,
                    retry=holder_retry_policy(max_elapsed=CANCEL_BUDGET),
                    http_retry=NO_RETRY,
                )
        except Exception as exc:
            logger.warning("could not cancel sampling request %s: %s", request_id, exc)

    def set_client_config(self, config: ses.ClientConfigResponse) -> None:
        """Use ``config`` (e.g. carried by a pickled client) instead of fetching it."""
        with self._lock:
            if self._config is None:
                self._config = config

    def fwdbwd_bytes(self) -> BytesSemaphore:
        """Budget of estimated bytes of in-flight forward/backward submissions."""
        with self._lock:
            if self._fwdbwd_bytes is None:
                size = self.client_config().fwdbwd_dispatch_bytes_semaphore_size
                self._fwdbwd_bytes = BytesSemaphore(size)
            return self._fwdbwd_bytes

    def sample_bytes(self) -> BytesSemaphore:
        """Budget of estimated bytes of in-flight sample submissions."""
        with self._lock:
            if self._sample_bytes is None:
                size = self.client_config().sample_dispatch_bytes_semaphore_size
                self._sample_bytes = BytesSemaphore(size)
            return self._sample_bytes

    def sample_backoff(self) -> SampleBackoff:
        """The samplers' back-off after a 429 without a hint (shared by this holder's samplers)."""
        with self._lock:
            if self._sample_backoff is None:
                self._sample_backoff = SampleBackoff()
            return self._sample_backoff

    def response_bytes(self) -> BytesSemaphore:
        """Budget for large results announced by ``complete_metadata`` answers."""
        with self._lock:
            if self._response_bytes is None:
                size = self.client_config().inflight_response_bytes_semaphore_size
                self._response_bytes = BytesSemaphore(size)
            return self._response_bytes

    def session_id(self) -> str:
        """The session id, creating the session (and its heartbeat) on first use."""
        if self._session_id is not None:
            return self._session_id
        if not self.with_session:
            raise TinkerError("this client has no session (RestClient/AdminClient)")
        with self._lock, background():
            self.check_open()
            if self._session_id is None:
                self.client_config()
                request = ses.CreateSessionRequest(
                    tags=list(self.settings.tags),
                    user_metadata=self.user_metadata,
                    sdk_version=TINKER_SDK_VERSION,
                    project_id=self.project_id,
                    display_name=self.display_name,
                )
                response = self.transport.request(
                    "POST", "/api/v1/create_session", json=to_wire(request), stop=self._stop
                )
                created = from_wire(
                    response.json(),
                    ses.CreateSessionResponse,
                    request="POST /api/v1/create_session",
                )
                for level, message in (
                    (logging.INFO, created.info_message),
                    (logging.WARNING, created.warning_message),
                    (logging.ERROR, created.error_message),
                ):
                    if message:
                        logger.log(level, "Tinker session %s: %s", created.session_id, message)
                self._session_id = created.session_id
                self._heartbeat = threading.Thread(
                    target=self._heartbeat_loop,
                    args=(created.session_id,),
                    name="tinkex-heartbeat",
                    daemon=True,
                )
                self._heartbeat.start()
                if self.settings.telemetry_enabled and self._reporter is None:
                    self._reporter = self._new_reporter(created.session_id)
            return self._session_id

    @property
    def current_session_id(self) -> str | None:
        """The session id if a session exists, without creating one."""
        return self._session_id

    def next_model_seq_id(self) -> int:
        """Reserve the next ``model_seq_id`` of this session."""
        return next(self._model_seq)

    def next_sampling_session_seq_id(self) -> int:
        """Reserve the next ``sampling_session_seq_id`` of this session."""
        return next(self._sampling_seq)

    def _heartbeat_loop(self, session_id: str) -> None:
        last_ok = time.monotonic()
        body = to_wire(ses.SessionHeartbeatRequest(session_id=session_id))
        while not self._stop.wait(HEARTBEAT_INTERVAL):
            if self._dynamic_config_stale():
                self._refresh_dynamic_config()
            try:
                self.transport.request(
                    "POST", "/api/v1/session_heartbeat", json=body, timeout=10.0, retry=NO_RETRY
                )
                last_ok = time.monotonic()
            except APIStatusError as exc:
                if exc.status_code == 410:
                    logger.info("Tinker session %s has finished; heartbeat stopped", session_id)
                    return
                self._warn_heartbeat(session_id, last_ok, exc)
            except Exception as exc:
                self._warn_heartbeat(session_id, last_ok, exc)

    @staticmethod
    def _warn_heartbeat(session_id: str, last_ok: float, exc: Exception) -> None:
        silent_for = time.monotonic() - last_ok
        if silent_for > _HEARTBEAT_WARN_AFTER:
            logger.warning(
                "Tinker session %s: no successful heartbeat for %.0f s (%s); the server may "
                "end the session",
                session_id,
                silent_for,
                exc,
            )
