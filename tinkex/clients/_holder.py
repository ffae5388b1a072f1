"""The client holder: the shared machinery behind the clients of one ServiceClient.

Every public client is thin: it validates its arguments, builds a request type and hands the
work to its :class:`ClientHolder`, which owns

* the resolved :class:`~tinkex._config.ClientSettings` and the shared ``Transport``;
* the holder-level calls (layer 2 of docs/protocol.md, "Retries"): ``request``, ``call``,
  ``submit`` and ``poll`` of future-returning requests, ``run``/``spawn`` of client work;
* its parts, one module each: the worker pools and I/O loop (``_pools.WorkerPools``), the
  server's client and dynamic config with the byte budgets they size
  (``_server_config.ServerConfig``), the session with its heartbeat and counters
  (``_session.HolderSession``), the telemetry reporter and failure reports
  (``_telemetry.HolderTelemetry``).

``close(status, detail)`` finishes the session server-side, stops the heartbeat, wakes every
poller (they raise ``CancelledError``) and shuts the pools down. Closing twice is harmless.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
import weakref
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from tinkex._config import ClientSettings, configure_logging
from tinkex._exceptions import TinkerError
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
from tinkex.clients._pools import WorkerPools
from tinkex.clients._sample_backoff import SampleBackoff
from tinkex.clients._server_config import ServerConfig
from tinkex.clients._session import HolderSession
from tinkex.clients._telemetry import HolderTelemetry
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
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._closed = False
        self._on_close: list[Callable[[], None]] = []
        self._pools = WorkerPools(
            settings, self.transport, workers=workers, sample_workers=sample_workers
        )
        self._server = ServerConfig(
            self.transport,
            self._stop,
            self._fetch_client_config,
            sample_byte_budget=settings.sample_byte_budget,
        )
        self._session = HolderSession(settings, self.transport, self._stop, self._refresh_if_stale)
        self._telemetry = HolderTelemetry(settings, self.transport)
        throttled = settings.sample_throttled_concurrency
        self._sample_backoff = (
            SampleBackoff() if throttled is None else SampleBackoff(throttled_concurrency=throttled)
        )

    def __repr__(self) -> str:
        return (
            f"ClientHolder(base_url={self.settings.base_url!r}, "
            f"session_id={self._session.id!r}, closed={self._closed})"
        )

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

    def close_with(self, owner: object) -> None:
        """Close the holder once ``owner``, its only client, is garbage-collected.

        For a holder no ServiceClient owns (an unpickled ``SamplingClient``'s): nothing else
        would stop its I/O thread and pools. The holder must not refer to ``owner``.
        """
        finalizer = weakref.finalize(owner, _close_abandoned, self)
        finalizer.atexit = False  # at exit its daemon threads end with the process, as before

    def close(self, status: SessionStatusName = "success", detail: str | None = None) -> None:
        """Finish the session (if any), stop background threads and worker pools."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        # Work in flight ends (cancelled) first, not while the server is told that the
        # session is over: that request can take a while, and meanwhile it would go on.
        self._stop.set()
        try:
            self._pools.close()
        finally:
            try:
                self._session.finish(status, detail, holder_retry_policy(max_elapsed=30.0))
            finally:
                for callback in self._on_close:
                    callback()
                self._telemetry.close()
                self._session.join(timeout=5.0)

    # -- running client work -----------------------------------------------------------------------
    def io(self) -> tuple[IOLoop, AsyncTransport] | None:
        """The I/O loop in-flight samples wait on, and the transport's requests over it.

        Created on first use; None when ``settings.sampling_io`` is ``"threads"`` or the
        transport cannot go over asyncio (a proxy, see ``tinkex._transport.aio.supports``):
        samples then hold a worker thread each.
        """
        self.check_open()
        return self._pools.io()

    def spawn(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> APIFuture[T]:
        """Run the coroutine ``fn(*args)`` on the I/O loop (see :meth:`io`); its future.

        A failure is also reported to the server's telemetry (when enabled).

        Raises:
            RuntimeError: the holder is closed, or has no I/O loop (``io()`` is None).
        """
        io = self.io()
        if io is None:
            raise RuntimeError("this client samples on worker threads (no I/O loop)")
        return self._reported(io[0].spawn(fn, *args))

    def run(
        self,
        fn: Callable[..., T],
        *args: Any,
        sampling: bool = False,
        into: APIFuture[T] | None = None,
    ) -> APIFuture[T]:
        """Run ``fn(*args)`` on a worker thread; the returned future (``into`` when given, see
        :meth:`APIFuture.run`) mirrors it.

        A failure is also reported to the server's telemetry (when enabled).
        """
        self.check_open()
        # The job runs in the caller's context, so its requests report the public method that
        # queued it (tinkex._transport.sdk_method).
        context = contextvars.copy_context()
        return self._reported(
            APIFuture.run(self._pools.pool(sampling), context.run, fn, *args, into=into)
        )

    def run_here(self, fn: Callable[..., T], *args: Any, into: APIFuture[T]) -> None:
        """:meth:`run` on the calling thread, which may block for it: settles ``into``."""
        self._reported(into)._compute(fn, *args)

    def _reported(self, future: APIFuture[T]) -> APIFuture[T]:
        """``future``, whose failure will be reported to the server's telemetry (when
        enabled)."""
        if self._telemetry.enabled:
            future.add_done_callback(self._telemetry.report_failure)
        return future

    def report_failure(self, exc: BaseException) -> None:
        """Report the failure of a call whose future is settled outside :meth:`run` (e.g. a
        training request refused at submission) to the server's telemetry (when enabled)."""
        self._telemetry.report_exception(exc)

    def telemetry(self) -> Reporter | None:
        """The telemetry reporter of this holder (None when ``TINKER_TELEMETRY`` is off).

        Session holders start it with the session (``SESSION_START``); session-less holders
        (RestClient/AdminClient) on first use, with a ``sessionless-<uuid>`` id.
        """
        return self._telemetry.reporter()

    # -- holder-level calls --------------------------------------------------------------------
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
                self._telemetry.report_attempt_failure(exc, label, policy, attempts, started)
                attempts += 1
                raise

        return policy.run(attempt, stop_event=self._stop, describe=label)

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
        config = self._server.known
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
            pacing=self.settings.poll_pacing,
        )

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

    # -- server config and budgets --------------------------------------------------------------
    def _fetch_client_config(self) -> ses.ClientConfigResponse:
        return self.call(
            "POST",
            "/api/v1/client/config",
            ses.ClientConfigResponse,
            body={"sdk_version": TINKER_SDK_VERSION},
        )

    def _refresh_if_stale(self) -> None:
        if self._server.dynamic_stale():
            self._server.refresh_dynamic()

    def client_config(self) -> ses.ClientConfigResponse:
        """The server's client config, fetched once (mandatory; docs/protocol.md, "Life cycle")."""
        return self._server.client_config()

    def set_client_config(self, config: ses.ClientConfigResponse) -> None:
        """Use ``config`` (e.g. carried by a pickled client) instead of fetching it."""
        self._server.set_client_config(config)

    def dynamic_config(self) -> ses.ClientDynamicConfigResponse:
        """The server's dynamic flags (see :class:`~tinkex.clients._server_config.ServerConfig`)."""
        return self._server.dynamic_config()

    def fwdbwd_bytes(self) -> BytesSemaphore:
        """Budget of estimated bytes of in-flight forward/backward submissions."""
        return self._server.fwdbwd_bytes()

    def sample_bytes(self) -> BytesSemaphore:
        """Budget of estimated bytes of in-flight sample submissions."""
        return self._server.sample_bytes()

    def response_bytes(self) -> BytesSemaphore:
        """Budget for large results announced by ``complete_metadata`` answers."""
        return self._server.response_bytes()

    def sample_backoff(self) -> SampleBackoff:
        """The samplers' back-off after a 429 without a hint (shared by this holder's samplers)."""
        return self._sample_backoff

    # -- session ---------------------------------------------------------------------------------
    def session_id(self) -> str:
        """The session id, creating the session (and its heartbeat) on first use."""
        session_id = self._session.id
        if session_id is not None:
            return session_id
        if not self.with_session:
            raise TinkerError("this client has no session (RestClient/AdminClient)")
        with self._lock, background():
            self.check_open()
            session_id = self._session.id
            if session_id is None:
                self.client_config()
                session_id = self._session.create(
                    ses.CreateSessionRequest(
                        tags=list(self.settings.tags),
                        user_metadata=self.user_metadata,
                        sdk_version=TINKER_SDK_VERSION,
                        project_id=self.project_id,
                        display_name=self.display_name,
                    )
                )
                self._telemetry.start_session(session_id)
            return session_id

    @property
    def current_session_id(self) -> str | None:
        """The session id if a session exists, without creating one."""
        return self._session.id

    def next_model_seq_id(self) -> int:
        """Reserve the next ``model_seq_id`` of this session."""
        return self._session.next_model_seq_id()

    def next_sampling_session_seq_id(self) -> int:
        """Reserve the next ``sampling_session_seq_id`` of this session."""
        return self._session.next_sampling_session_seq_id()


def _close_abandoned(holder: ClientHolder) -> None:
    """Close ``holder`` on a thread of its own: a collection runs on whichever thread
    allocates, the holder's own I/O thread included (which cannot join itself), possibly
    while that thread holds one of the holder's locks."""
    try:
        threading.Thread(target=holder.close, name="tinkex-close", daemon=True).start()
    except RuntimeError:  # no new threads at interpreter shutdown
        logger.debug("abandoned client holder left to the process's exit", exc_info=True)
