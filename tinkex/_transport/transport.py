"""The HTTP transport: one per (base URL, API key), with headers, credential, errors, retries.

Clients never touch ``requests``: they call :meth:`Transport.request` with a path and a JSON
value (or raw bytes) and get a :class:`Response` back, or a tinkex exception. The pieces it is
made of, each readable alone:

* ``sender.Sender`` — the ``requests.Session``: pool, prepared requests, same-origin redirects;
* ``headers`` — the static and per-request headers (``RequestHeaders``);
* ``retry.RetryPolicy`` — the layer-1 retries of each call (``http_retry_policy``);
* ``retry_warning.RetryWarning`` — the "cannot reach ...; retrying" warnings;
* ``events`` — the ``tinkex.http.request.*`` telemetry of each attempt;
* ``wire_dump`` — ``TINKEX_DUMP_HEADERS``; ``auth`` — the JWT credential;
* ``diagnose`` — failures in words, and which ones retrying cannot fix.

``requests`` is imported when the first transport is built, not when this module is imported.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from tinkex._config import ClientSettings
from tinkex._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    make_status_error,
)
from tinkex._transport._response import (
    Response,
    decode_error_body,
    decode_zstd,
    parse_retry_after,
    urllib3_decodes_zstd,
)
from tinkex._transport.auth import JwtCredential, decode_jwt_claims, invalid_token, is_jwt
from tinkex._transport.diagnose import connection_failure, not_a_tinker_api
from tinkex._transport.events import emit_exception, emit_start, emit_stop
from tinkex._transport.headers import USER_AGENT, RequestHeaders, platform_headers
from tinkex._transport.limits import RateLimiter
from tinkex._transport.retry import HTTP_DEFAULT, RetryPolicy, http_retry_policy
from tinkex._transport.retry_warning import RetryWarning
from tinkex._transport.sender import Outgoing, Sender
from tinkex._transport.wire_dump import dump_exchange

if TYPE_CHECKING:
    import requests

__all__ = ["USER_AGENT", "Transport", "platform_headers"]

#: A 429 without a usable Retry-After holds the key for this long (docs/protocol.md, "Retries").
DEFAULT_RATE_LIMIT_BACKOFF = 1.0


def _registry_key(settings: ClientSettings) -> tuple[Any, ...]:
    return (
        settings.base_url,
        settings.api_key,
        tuple(sorted(settings.default_headers.items())),
        tuple(sorted(settings.access_headers.items())),
        settings.max_connections,
        settings.timeout,
        settings.connect_timeout,
        settings.max_retries,
        settings.dump_headers,
        tuple(sorted(settings.default_query.items())),
        settings.proxy,
        tuple(sorted(settings.proxy_headers.items())),
    )


@attrs.define
class _Call:
    """One :meth:`Transport.request` call: what it sends, its credential, attempts so far."""

    out: Outgoing
    credential: JwtCredential | None
    attempts: int = 0


class Transport:
    """Sends requests to one Tinker server with one credential; safe to share across threads.

    Owns one :class:`~tinkex._transport.sender.Sender` (the ``requests.Session``, whose pool
    holds ``settings.max_connections`` connections), the static headers, the layer-1 retry
    policy and the rate limiter of its (base URL, API key). Get the process-wide instance with
    :meth:`shared`.

    Args:
        settings: resolved client settings.
        session: a ``requests.Session`` to use instead of a new one (tests).
        rate_limiter: limiter to use instead of ``RateLimiter.for_key(...)`` (tests).
        sleep: how retries wait (default ``time.sleep``); tests inject a fake.
        clock: monotonic clock for retry budgets.

    Example::

        transport = Transport.shared(ClientSettings.resolve())
        info = transport.request("POST", "/api/v1/get_info", json={"model_id": mid}).json()
    """

    _registry: ClassVar[dict[tuple[Any, ...], Transport]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        settings: ClientSettings,
        *,
        session: requests.Session | None = None,
        rate_limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._base_url = settings.base_url.rstrip("/")
        self._timeout = settings.timeout
        self._connect_timeout = settings.connect_timeout
        self._sleep = sleep
        self._clock = clock
        self._http_policy = http_retry_policy(settings.max_retries)
        self._limiter = rate_limiter or RateLimiter.for_key(settings.base_url, settings.api_key)
        # When the server uses JWT auth (client config ``pjwt_auth_enabled``): the JWT to send
        # as X-API-Key instead of the static key.
        self._credential: JwtCredential | None = None
        self._closed = False
        self._registry_key: tuple[Any, ...] | None = None
        #: The headers of every request (both transports build theirs here).
        self.request_headers = RequestHeaders(settings)
        self._sender = Sender(settings, self._base_url, session)
        self._session = self._sender.session
        self._decode_zstd = not urllib3_decodes_zstd()
        self.retry_warning = RetryWarning(self._base_url, clock)

    # ---- registry --------------------------------------------------------------------------

    @classmethod
    def shared(cls, settings: ClientSettings) -> Transport:
        """The process-wide transport for ``settings`` (one per base URL + API key + options)."""
        key = _registry_key(settings)
        with cls._registry_lock:
            transport = cls._registry.get(key)
            if transport is None or transport._closed:
                transport = cls(settings)
                transport._registry_key = key
                cls._registry[key] = transport
            return transport

    @classmethod
    def close_all(cls) -> None:
        """Close every shared transport (tests, interpreter shutdown)."""
        with cls._registry_lock:
            transports = list(cls._registry.values())
            cls._registry.clear()
        for transport in transports:
            transport.close()

    def close(self) -> None:
        """Close the session's connections and drop this transport from the registry.

        Later calls to :meth:`shared` build a fresh transport. Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        if self._registry_key is not None:
            with self._registry_lock:
                if self._registry.get(self._registry_key) is self:
                    del self._registry[self._registry_key]
        self._sender.close()
        if self._credential is not None:
            self._credential.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        """The server URL requests are sent to."""
        return self._base_url

    def set_credential_provider(self, credential: JwtCredential | None) -> None:
        """Send ``credential``'s JWT as ``X-API-Key`` from now on (None: the static key).

        A 401 whose ``WWW-Authenticate`` says ``invalid_token`` makes the transport ask it to
        replace the JWT sent and replay the request once.
        """
        self._credential = credential

    @property
    def credential_provider(self) -> JwtCredential | None:
        """The JWT credential in use, if any."""
        return self._credential

    def use_jwt(self, *, use_credential_cmd: bool = False) -> None:
        """Send JWTs from now on (docs/protocol.md, "Authentication").

        The API key (or, with ``use_credential_cmd``, ``TINKER_CREDENTIAL_CMD``'s output) is
        exchanged at ``POST /api/v1/auth/token`` now, so a refused exchange fails here with the
        server's answer; the JWT is refreshed on demand (``tinkex._transport.auth``). A no-op
        when a provider is installed already or the API key itself is a JWT.

        Raises:
            APIStatusError: the exchange was refused.
        """
        if self._credential is not None or is_jwt(self.settings.api_key):
            return
        credential = JwtCredential(self, self.settings, use_credential_cmd=use_credential_cmd)
        try:
            credential.token()
        except BaseException:
            credential.close()
            raise
        self._credential = credential

    def jwt_claims(self) -> dict[str, Any] | None:
        """Claims of the JWT this transport sends (exchanged, or given as the key), or None."""
        if self._credential is not None:
            return self._credential.claims
        if is_jwt(self.settings.api_key):
            return decode_jwt_claims(self.settings.api_key)
        return None

    @property
    def verify(self) -> Any:
        """TLS verification as requests takes it: True, False or a CA bundle path."""
        return self._sender.send_kwargs["verify"]

    def proxies_for(self, scheme: str) -> str | None:
        """The proxy URL requests to this server go through (None: direct)."""
        proxies: dict[str, str] = self._sender.send_kwargs["proxies"]
        return proxies.get(scheme) or proxies.get("all")

    @property
    def rate_limiter(self) -> RateLimiter:
        """The limiter shared by every transport of this (base URL, API key)."""
        return self._limiter

    @property
    def http_retry_policy(self) -> RetryPolicy:
        """The layer-1 policy used for ``retry=HTTP_DEFAULT``."""
        return self._http_policy

    def __repr__(self) -> str:
        return f"<Transport {self._base_url} closed={self._closed}>"

    # ---- requests --------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        retry: RetryPolicy = HTTP_DEFAULT,
        accept: str = "application/json",
        stop: threading.Event | None = None,
        credential: bool = True,
    ) -> Response:
        """Send ``method path`` and return the 2xx :class:`Response`.

        Args:
            method: ``"GET"``, ``"POST"``, ``"PUT"``, ``"DELETE"``.
            path: path under the base URL, e.g. ``"/api/v1/get_info"``.
            json: a JSON-able value sent as the body (``application/json``).
            content: raw body bytes (e.g. protobuf); use with ``content_type``.
            content_type: ``Content-Type`` of non-GET requests (default ``application/json``).
            headers: extra headers (``x-sdk-method``, ``X-Tinker-Request-*`` ...), merged after
                ours and before ``settings.default_headers``.
            params: query parameters (over ``settings.default_query``).
            timeout: read timeout in seconds (default ``settings.timeout``).
            retry: layer-1 policy; ``HTTP_DEFAULT`` = ``http_retry_policy(max_retries)``,
                ``NO_RETRY`` for one attempt.
            accept: ``Accept`` header.
            stop: when set, retries stop (``concurrent.futures.CancelledError``) and retry
                sleeps wake up at once; an attempt already on the wire is not interrupted.
            credential: send the JWT of the credential provider (if one is set) instead of
                the static key; False for the token exchange itself.

        Raises:
            APIStatusError: (subclass per status) a non-2xx answer after retries; carries
                ``status_code``, ``body``, ``request`` (``"POST /api/v1/..."``), ``request_id``.
            APITimeoutError: the request timed out.
            APIConnectionError: the server could not be reached.
            concurrent.futures.CancelledError: ``stop`` was set before a retry.
        """
        method = method.upper()
        read_timeout = self._timeout if timeout is None else timeout
        policy = self._http_policy if retry is HTTP_DEFAULT else retry
        request_headers, body = self.request_headers.build(
            method, json, content, content_type, headers, accept, read_timeout
        )
        jwt = self._credential if credential else None
        if jwt is not None and not (headers and "X-API-Key" in headers):
            request_headers["X-API-Key"] = jwt.token()
        if self.settings.default_query:
            params = {**self.settings.default_query, **(params or {})}
        out = Outgoing(
            method,
            self._base_url + path,
            f"{method} {path}",
            request_headers,
            body,
            params,
            (self._connect_timeout, read_timeout),
        )
        return policy.call(
            self._attempt,
            _Call(out, jwt),
            policy,
            sleep=self._sleep,
            clock=self._clock,
            stop_event=stop,
            describe=out.label,
        )

    def _attempt(self, call: _Call, policy: RetryPolicy) -> Response:
        """One HTTP-layer attempt of ``call`` (a JWT that expired is refreshed and replayed)."""
        headers = call.out.headers
        headers["x-stainless-retry-count"] = str(call.attempts)
        call.attempts += 1
        self._limiter.wait()
        try:
            response = self._send_once(call.out, call.attempts - 1)
        except (APIConnectionError, APIStatusError) as exc:
            jwt = call.credential
            if not isinstance(exc, AuthenticationError) or jwt is None or not invalid_token(exc):
                self.retry_warning.failed(exc, call.out.label, policy, call.attempts)
                raise
            # The JWT expired or was revoked: replace it and replay this request once.
            headers["X-API-Key"] = jwt.replace(headers["X-API-Key"])
            return self._send_once(call.out, call.attempts - 1)
        self.retry_warning.succeeded()
        return response

    def _send_once(self, out: Outgoing, retry_count: int) -> Response:
        """Send ``out`` once; its 2xx :class:`Response`, else the exception it maps to."""
        method, label, headers = out.method, out.label, out.headers
        started = time.perf_counter()
        path = label.partition(" ")[2]
        observed = emit_start(method, path, retry_count, headers)
        sender = self._sender
        try:
            raw, content = sender.send(out)
        except sender.timeout_exc as exc:
            emit_exception(method, path, retry_count, started, exc, headers)
            raise APITimeoutError(
                label, message=f"Request timed out after {out.timeouts[1]:g} s: {label}"
            ) from exc
        except sender.request_exc as exc:
            emit_exception(method, path, retry_count, started, exc, headers)
            raise connection_failure(exc, self._base_url, label) from exc
        if self._decode_zstd and "zstd" in raw.headers.get("content-encoding", ""):
            content = decode_zstd(content, label)
        elapsed = time.perf_counter() - started
        response = Response(raw.status_code, raw.headers, content, request=label, elapsed=elapsed)
        if self.settings.dump_headers:
            dump_exchange(
                raw.request.url or out.url, label, headers, out.body, response, retry_count
            )
        return self._finish(response, method, retry_count, observed, headers)

    def _finish(
        self,
        response: Response,
        method: str,
        retry_count: int,
        observed: bool,
        headers: Mapping[str, str],
    ) -> Response:
        """The 2xx ``response`` itself; any other status as its tinkex exception.

        Shared by this transport and the asyncio one (``tinkex._transport.aio``): a 429
        extends the key's rate-limit window, and the stop event is emitted when ``observed``.
        """
        status = response.status_code
        label = response.request
        if status == 429:
            self._limiter.back_off(
                parse_retry_after(response.headers) or DEFAULT_RATE_LIMIT_BACKOFF
            )
        if observed:
            path = label.partition(" ")[2]
            emit_stop(
                method, path, retry_count, headers, status, response.request_id, response.elapsed
            )
        if 200 <= status < 300:
            return response
        mismatch = not_a_tinker_api(
            status, response.content_type, response.content, self._base_url, label
        )
        if mismatch is not None:
            raise mismatch
        raise make_status_error(
            status,
            decode_error_body(response.content),
            request=label,
            request_id=response.request_id,
            response=response,
        )
