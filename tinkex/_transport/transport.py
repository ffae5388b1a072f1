"""The HTTP transport: one ``requests.Session`` per (base URL, API key), headers, errors, retries.

Clients never touch ``requests``: they call :meth:`Transport.request` with a path and a JSON
value (or raw bytes) and get a :class:`Response` back, or a tinkex exception. ``requests`` is
imported when the first transport is built, not when this module is imported.
"""

from __future__ import annotations

import json as _json
import logging
import os
import platform
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, cast
from urllib.parse import urlencode, urljoin, urlsplit

from tinkex._config import ClientSettings
from tinkex._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    TinkerError,
    make_status_error,
)
from tinkex._transport._response import Response, parse_retry_after
from tinkex._transport.diagnose import connection_failure, failure_reason, not_a_tinker_api
from tinkex._transport.limits import RateLimiter
from tinkex._transport.retry import HTTP_DEFAULT, RetryPolicy, http_retry_policy, retry_deadline
from tinkex._transport.sdk_method import current_sdk_method
from tinkex._version import TINKER_SDK_VERSION, __version__
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

if TYPE_CHECKING:
    import requests

__all__ = ["USER_AGENT", "Transport", "platform_headers"]

logger = logging.getLogger("tinkex.transport")
#: ``TINKEX_DUMP_HEADERS=1``: one INFO record per request and its answer, secrets masked.
wire_logger = logging.getLogger("tinkex.wire")
#: Headers whose values are never logged.
_SECRET_HEADERS = frozenset(
    {
        "x-api-key",
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "cf-access-client-secret",
        "x-tinker-weights-access-token",
    }
)

USER_AGENT = (
    f"tinkex/{__version__} (tinker-api/{TINKER_SDK_VERSION}; Python/{platform.python_version()})"
)

START_EVENT = HTTP_REQUEST_START
STOP_EVENT = HTTP_REQUEST_STOP
EXCEPTION_EVENT = HTTP_REQUEST_EXCEPTION

#: A 429 without a usable Retry-After holds the key for this long (docs/protocol.md, "Retries").
DEFAULT_RATE_LIMIT_BACKOFF = 1.0
#: What the official SDK advertises; zstd answers are decoded with ``zstandard`` when urllib3
#: cannot (docs/protocol.md, "Transport").
ACCEPT_ENCODING = "gzip, deflate, zstd"
#: Same-origin redirects followed for one request before giving up (docs/protocol.md, "Redirects").
MAX_REDIRECTS = 5
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: Seconds between two "cannot reach ...; retrying" warnings of one transport.
RETRY_WARNING_INTERVAL = 10.0
_DEFAULT_PORTS = {"http": 80, "https": 443}

# Canonical spelling of the headers we set, so a caller's "accept" replaces our "Accept".
_CANONICAL = {
    name.lower(): name
    for name in (
        "X-API-Key",
        "User-Agent",
        "Accept",
        "Accept-Encoding",
        "Content-Type",
        "X-Idempotency-Key",
        "x-stainless-retry-count",
        "x-stainless-read-timeout",
        "CF-Access-Client-Id",
        "CF-Access-Client-Secret",
        "x-sdk-version",
        "x-sdk-method",
    )
}

_OS_NAMES = {"linux": "Linux", "darwin": "MacOS", "windows": "Windows", "freebsd": "FreeBSD"}
_ARCH_NAMES = {
    "x86_64": "x64",
    "amd64": "x64",
    "i386": "x32",
    "i686": "x32",
    "arm64": "arm64",
    "aarch64": "arm64",
}


def platform_headers() -> dict[str, str]:
    """The ``X-Stainless-*`` platform headers the official SDK sends, with this process's values.

    The package version is the API version tinkex speaks (0.38.0); ``X-Stainless-Async`` is
    ``false`` because tinkex's clients are synchronous (thread pools), as in Stainless's own
    synchronous clients.
    """
    system = platform.system()
    machine = platform.machine()
    arch = _ARCH_NAMES.get(machine.lower())
    if arch is None:
        arch = "arm" if machine.lower().startswith("arm") else f"other:{machine}"
    return {
        "X-Stainless-Package-Version": TINKER_SDK_VERSION,
        "X-Stainless-OS": _OS_NAMES.get(system.lower(), f"Other:{system}"),
        "X-Stainless-Arch": arch,
        "X-Stainless-Runtime": platform.python_implementation(),
        "X-Stainless-Runtime-Version": platform.python_version(),
        "X-Stainless-Async": "false",
    }


# Characters that may appear unescaped in our URLs; anything else goes through requote_uri.
_NEEDS_QUOTING = re.compile(r"[^A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]")


def _check_header(name: str, value: str) -> None:
    # Headers are sent as given (see Transport._prepare), so reject CR/LF here, once. The
    # message names the header, never its value (it may be a secret).
    if not name or any(c in name for c in "\r\n: ") or "\r" in value or "\n" in value:
        raise TinkerError(
            f"Invalid HTTP header {name!r}: names must be non-empty tokens and values must not "
            "contain line breaks; check default_headers and the API key for stray newlines."
        )


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else repr(float(seconds))


def _merge(target: dict[str, str], extra: Mapping[str, str]) -> None:
    for key, value in extra.items():
        target[_CANONICAL.get(key.lower(), key)] = value


def invalid_token(exc: APIStatusError) -> bool:
    headers = getattr(exc.response, "headers", None)
    challenge = headers.get("WWW-Authenticate", "") if headers is not None else ""
    return 'error="invalid_token"' in challenge


def _decode_error_body(content: bytes) -> object | None:
    if not content:
        return None
    try:
        body: object = _json.loads(content)
    except ValueError:
        return content.decode("utf-8", errors="replace")
    return body


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


def _without_query(url: str) -> str:
    # Signed URLs carry their secrets in the query: never put it into a message.
    parts = urlsplit(url)
    return parts._replace(query="", fragment="").geturl()


def _redirect_error(status: int, label: str, location: str | None, why: str) -> APIStatusError:
    where = f" to {_without_query(location)}" if location else " with no Location header"
    return APIStatusError(
        f"{label} was redirected ({status}){where}: {why}",
        status_code=status,
        request=label,
    )


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
    )


class Transport:
    """Sends requests to one Tinker server with one credential; safe to share across threads.

    Owns one ``requests.Session`` whose connection pool holds ``settings.max_connections``
    connections, the static headers, the layer-1 retry policy and the rate limiter of its
    (base URL, API key). Get the process-wide instance with :meth:`shared`.

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
        import requests
        import requests.adapters

        self.settings = settings
        self._base_url = settings.base_url.rstrip("/")
        self._timeout = settings.timeout
        self._connect_timeout = settings.connect_timeout
        self._sleep = sleep
        self._clock = clock
        self._http_policy = http_retry_policy(settings.max_retries)
        self._limiter = rate_limiter or RateLimiter.for_key(settings.base_url, settings.api_key)
        # When the server uses JWT auth (client config ``pjwt_auth_enabled``), this returns the
        # credential to send as X-API-Key (``force=True``: refresh it first).
        self._credential: Callable[[bool], str] | None = None
        self._closed = False
        self._registry_key: tuple[Any, ...] | None = None

        self._session = session if session is not None else requests.Session()
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=4,
            pool_maxsize=settings.max_connections,
            max_retries=0,  # retries are ours (RetryPolicy), never urllib3's
        )
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        # Environment lookups (proxies, CA bundle, netrc) cost tens of microseconds per request
        # when requests does them itself (trust_env); do them once here instead.
        if self._session.trust_env:
            self._session.proxies.update(requests.utils.get_environ_proxies(self._base_url))
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if bundle:
                self._session.verify = bundle
            self._session.trust_env = False

        self._prepared_cls = requests.PreparedRequest
        self._headers_cls = requests.structures.CaseInsensitiveDict
        self._requote = requests.utils.requote_uri
        self._send_kwargs: dict[str, Any] = {
            "stream": False,
            "verify": self._session.verify,
            "cert": self._session.cert,
            "proxies": dict(self._session.proxies),
            # Redirects are decided by _follow_redirects (same origin only), never by requests,
            # which would carry X-API-Key to any origin a 3xx names.
            "allow_redirects": False,
        }
        for name, value in self._base_headers_for_validation(settings):
            _check_header(name, value)
        self._timeout_exc: type[BaseException] = requests.Timeout
        self._request_exc: type[BaseException] = requests.RequestException
        # Static headers, built once; each request copies this dict and adds its own.
        self._base_headers: dict[str, str] = {
            "X-API-Key": settings.api_key,
            "User-Agent": USER_AGENT,
            "Accept-Encoding": ACCEPT_ENCODING,
            **platform_headers(),
        }
        self._decode_zstd = not _urllib3_decodes_zstd()
        self._warn_lock = threading.Lock()
        self._warned_at: float | None = None
        self._failing_since: float | None = None  # first failure of the current streak
        _merge(self._base_headers, settings.access_headers)
        self._default_headers = dict(settings.default_headers)

    @staticmethod
    def _base_headers_for_validation(settings: ClientSettings) -> Iterator[tuple[str, str]]:
        yield ("X-API-Key", settings.api_key)
        yield from settings.access_headers.items()
        yield from settings.default_headers.items()

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
        self._session.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        """The server URL requests are sent to."""
        return self._base_url

    def set_credential_provider(self, provider: Callable[[bool], str] | None) -> None:
        """Send ``provider(False)`` as ``X-API-Key`` from now on (None: the static key).

        A 401 whose ``WWW-Authenticate`` says ``invalid_token`` makes the transport call
        ``provider(True)`` and replay the request once.
        """
        self._credential = provider

    @property
    def credential_provider(self) -> Callable[[bool], str] | None:
        """The JWT credential provider in use, if any."""
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
        from tinkex._transport.auth import JwtCredential, is_jwt

        if self._credential is not None or is_jwt(self.settings.api_key):
            return
        credential = JwtCredential(self, self.settings, use_credential_cmd=use_credential_cmd)
        credential(False)
        self._credential = credential

    def jwt_claims(self) -> dict[str, Any] | None:
        """Claims of the JWT this transport sends (exchanged, or given as the key), or None."""
        from tinkex._transport.auth import JwtCredential, decode_jwt_claims, is_jwt

        if isinstance(self._credential, JwtCredential):
            return self._credential.claims
        if is_jwt(self.settings.api_key):
            return decode_jwt_claims(self.settings.api_key)
        return None

    @property
    def verify(self) -> Any:
        """TLS verification as requests takes it: True, False or a CA bundle path."""
        return self._send_kwargs["verify"]

    def proxies_for(self, scheme: str) -> str | None:
        """The proxy URL requests to this server go through (None: direct)."""
        proxies: dict[str, str] = self._send_kwargs["proxies"]
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
            params: query parameters.
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
        label = f"{method} {path}"
        url = self._base_url + path
        read_timeout = self._timeout if timeout is None else timeout
        policy = self._http_policy if retry is HTTP_DEFAULT else retry

        request_headers, body = self._headers_and_body(
            method, json, content, content_type, headers, accept, read_timeout
        )
        timeouts = (self._connect_timeout, read_timeout)
        attempt = 0
        provider = self._credential if credential else None
        if provider is not None and not (headers and "X-API-Key" in headers):
            request_headers["X-API-Key"] = provider(False)

        def send() -> Response:
            nonlocal attempt
            request_headers["x-stainless-retry-count"] = str(attempt)
            attempt += 1
            self._limiter.wait()
            try:
                response = self._send_once(
                    method, url, label, request_headers, body, params, timeouts, attempt - 1
                )
                self._failing_since = None
                return response
            except (APIConnectionError, APIStatusError) as exc:
                if (
                    not isinstance(exc, AuthenticationError)
                    or provider is None
                    or not invalid_token(exc)
                ):
                    self._warn_while_retrying(exc, label, policy, attempt)
                    raise
                # The JWT expired or was revoked: refresh it and replay this request once.
                request_headers["X-API-Key"] = provider(True)
                return self._send_once(
                    method, url, label, request_headers, body, params, timeouts, attempt - 1
                )

        return policy.call(
            send, sleep=self._sleep, clock=self._clock, stop_event=stop, describe=label
        )

    def _warn_while_retrying(
        self, exc: BaseException, label: str, policy: RetryPolicy, attempts: int
    ) -> None:
        """A WARNING while the server cannot be reached or fails (connection errors,
        timeouts, 5xx) for longer than ``RETRY_WARNING_INTERVAL``, then at most once per
        interval (per transport), naming the URL, the cause and how long retrying goes on.
        A blip that retries fix at once stays quiet."""
        if not (
            isinstance(exc, APIConnectionError)
            or (isinstance(exc, APIStatusError) and exc.status_code >= 500)
        ):
            return
        deadline = retry_deadline()
        if deadline is None and not policy.is_retryable(exc):
            return  # nothing retries it (e.g. a heartbeat): no "retrying" to announce
        now = self._clock()
        with self._warn_lock:
            if self._failing_since is None:
                self._failing_since = now
            if now - self._failing_since < RETRY_WARNING_INTERVAL or (
                self._warned_at is not None and now - self._warned_at < RETRY_WARNING_INTERVAL
            ):
                return
            self._warned_at = now
        now = time.monotonic()  # the deadline is on this clock
        if deadline is not None:
            left = f"retrying for {_duration(max(deadline - now, 0.0))} more"
        elif policy.max_retries is not None:
            left = f"retrying up to {max(policy.max_retries - attempts + 1, 0)} more times"
        else:
            left = "retrying"
        reach = "cannot reach" if isinstance(exc, APIConnectionError) else "server error from"
        logger.warning(
            "%s %s (%s): %s; %s", reach, self._base_url, label, failure_reason(exc), left
        )

    def _headers_and_body(
        self,
        method: str,
        json: Any,
        content: bytes | None,
        content_type: str | None,
        headers: Mapping[str, str] | None,
        accept: str,
        read_timeout: float,
    ) -> tuple[dict[str, str], bytes | None]:
        request_headers = self._base_headers.copy()
        request_headers["Accept"] = accept
        request_headers["x-stainless-read-timeout"] = _format_seconds(read_timeout)
        body: bytes | None = None
        if method != "GET":
            if json is not None:
                body = _json.dumps(json, separators=(",", ":"), ensure_ascii=False).encode()
            elif content is not None:
                body = content
            request_headers["Content-Type"] = content_type or "application/json"
            # One key per call, reused by every HTTP-layer retry of it.
            request_headers["X-Idempotency-Key"] = f"tinkex-retry-{uuid.uuid4()}"
        sdk_method = current_sdk_method()
        if sdk_method is not None:
            request_headers["x-sdk-version"] = TINKER_SDK_VERSION
            request_headers["x-sdk-method"] = sdk_method
        if headers:
            _merge(request_headers, headers)
        if self._default_headers:
            _merge(request_headers, self._default_headers)
        _inject_trace_context(request_headers)
        return request_headers, body

    def _send_once(
        self,
        method: str,
        url: str,
        label: str,
        headers: dict[str, str],
        body: bytes | None,
        params: Mapping[str, Any] | None,
        timeouts: tuple[float, float],
        retry_count: int,
    ) -> Response:
        started = time.perf_counter()
        path = label.partition(" ")[2]
        observed = self._emit_start(method, path, retry_count, headers)
        try:
            raw = self._send_following_redirects(
                method, url, label, headers, body, params, timeouts
            )
        except self._timeout_exc as exc:
            self._emit_exception(method, path, retry_count, started, exc, headers)
            raise APITimeoutError(
                label, message=f"Request timed out after {timeouts[1]:g} s: {label}"
            ) from exc
        except self._request_exc as exc:
            self._emit_exception(method, path, retry_count, started, exc, headers)
            raise connection_failure(exc, self._base_url, label) from exc
        content = raw.content
        if self._decode_zstd and "zstd" in raw.headers.get("content-encoding", ""):
            content = decode_zstd(content, label)
        response = Response(
            raw.status_code,
            raw.headers,
            content,
            request=label,
            elapsed=time.perf_counter() - started,
        )
        if self.settings.dump_headers:
            dump_exchange(raw.request.url or url, label, headers, body, response, retry_count)
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
        path = label.partition(" ")[2]
        if status == 429:
            self._limiter.back_off(
                parse_retry_after(response.headers) or DEFAULT_RATE_LIMIT_BACKOFF
            )
        if observed:
            stop = cast(HttpRequestStopMetadata, _request_meta(method, path, retry_count, headers))
            stop["status"] = status
            stop["request_id"] = response.request_id
            emit(STOP_EVENT, {"duration": response.elapsed}, stop)
        if 200 <= status < 300:
            return response
        mismatch = not_a_tinker_api(
            status, response.content_type, response.content, self._base_url, label
        )
        if mismatch is not None:
            raise mismatch
        raise make_status_error(
            status,
            _decode_error_body(response.content),
            request=label,
            request_id=response.request_id,
            response=response,
        )

    def _send_following_redirects(
        self,
        method: str,
        url: str,
        label: str,
        headers: dict[str, str],
        body: bytes | None,
        params: Mapping[str, Any] | None,
        timeouts: tuple[float, float],
    ) -> requests.Response:
        """Send, following redirects within the API's origin only (docs/protocol.md, "Redirects").

        307/308 keep the method and body; 301/302/303 are followed for GET only (a POST turned
        into a GET would be a different request). Any other redirect, one to another origin
        (the credentials would go with it) and more than ``MAX_REDIRECTS`` hops raise an
        ``APIStatusError`` of the 3xx status naming the request and the ``Location``.
        """
        origin = _origin(self._base_url)
        for _ in range(MAX_REDIRECTS + 1):
            raw = self._session.send(
                self._prepare(method, url, headers, body, params),
                timeout=timeouts,
                **self._send_kwargs,
            )
            status = raw.status_code
            if status not in _REDIRECT_STATUSES:
                return raw
            raw.close()
            location = raw.headers.get("location")
            if not location:
                raise _redirect_error(status, label, None, "cannot follow it.")
            target = urljoin(url, location)
            if _origin(target) != origin:
                scheme, host, port = _origin(target)
                raise _redirect_error(
                    status,
                    label,
                    target,
                    "tinkex does not follow redirects to another origin, so the API key is not "
                    f"sent there. If {scheme}://{host}:{port} is the Tinker API, set base_url "
                    "(or TINKER_BASE_URL) to it.",
                )
            if status in (301, 302, 303) and method != "GET":
                raise _redirect_error(
                    status,
                    label,
                    target,
                    f"a {status} would turn this {method} into a GET, so it is not followed; "
                    "check base_url (or TINKER_BASE_URL) and the server's routing.",
                )
            url, params = target, None
        raise _redirect_error(
            status, label, target, f"more than {MAX_REDIRECTS} redirects; check the server."
        )

    def _prepare(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        params: Mapping[str, Any] | None,
    ) -> requests.PreparedRequest:
        # Session.request() re-merges session settings on every call, and in recent requests
        # versions that merge goes through runtime-checkable Protocol isinstance checks costing
        # ~100 us per request. Our inputs are already normalised (URL built from a validated
        # base URL, headers from our own code and validated settings, body already bytes), so
        # the prepared request is filled in directly.
        prepared = self._prepared_cls()
        prepared.method = method
        if params:
            url = f"{url}?{urlencode(params, doseq=True)}"
        if _NEEDS_QUOTING.search(url):
            url = self._requote(url)
        prepared.url = url
        prepared.headers = self._headers_cls(headers)
        if body is not None:
            prepared.headers["Content-Length"] = str(len(body))
        elif method not in ("GET", "HEAD"):
            prepared.headers["Content-Length"] = "0"
        prepared.body = body
        if self._session.cookies:
            prepared.prepare_cookies(self._session.cookies)
        else:
            # requests reads the jar when an answer is a redirect (to offer ``Response.next``),
            # even with allow_redirects=False: a prepared request without one crashes there.
            prepared._cookies = self._session.cookies  # type: ignore[attr-defined]
        return prepared

    @staticmethod
    def _emit_start(method: str, path: str, retry_count: int, headers: Mapping[str, str]) -> bool:
        """Emit the start event when observed; whether the stop event is observed too."""
        observed = has_handlers(START_EVENT) or has_handlers(STOP_EVENT)
        if observed:
            emit(START_EVENT, {}, _request_meta(method, path, retry_count, headers))
        return observed

    @staticmethod
    def _emit_exception(
        method: str,
        path: str,
        retry_count: int,
        started: float,
        exc: BaseException,
        headers: Mapping[str, str],
    ) -> None:
        if has_handlers(EXCEPTION_EVENT):
            meta = cast(
                HttpRequestExceptionMetadata, _request_meta(method, path, retry_count, headers)
            )
            meta["error"] = type(exc).__name__
            emit(EXCEPTION_EVENT, {"duration": time.perf_counter() - started}, meta)


def _urllib3_decodes_zstd() -> bool:
    from urllib3.response import HTTPResponse

    return "zstd" in HTTPResponse.CONTENT_DECODERS


def decode_zstd(content: bytes, label: str) -> bytes:
    """``content`` decoded from zstd (all frames); one that does not decode names ``label``."""
    import io

    import zstandard

    try:
        reader = zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(content), read_across_frames=True
        )
        return reader.read()
    except zstandard.ZstdError as exc:
        raise APIResponseValidationError(
            None,
            None,
            message=f"Response to {label} says Content-Encoding: zstd but does not decode: {exc}",
            request=label,
        ) from None


def _duration(seconds: float) -> str:
    if seconds >= 90:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds:.0f} s"


def _request_meta(
    method: str, path: str, retry_count: int, headers: Mapping[str, str]
) -> HttpRequestMetadata:
    """The metadata of an HTTP event: the request, and what it was made for."""
    meta: HttpRequestMetadata = {"method": method, "path": path, "retry_count": retry_count}
    sdk_method = headers.get("x-sdk-method")
    if sdk_method is not None:
        meta["sdk_method"] = sdk_method
    meta.update(cast(HttpRequestMetadata, call_context()))
    return meta


def _inject_trace_context(headers: dict[str, str]) -> None:
    """W3C ``traceparent``/``tracestate`` of the current OpenTelemetry span, when the
    application uses OpenTelemetry (already imported: tinkex never imports it)."""
    propagate = sys.modules.get("opentelemetry.propagate")
    if propagate is None:
        return
    try:
        propagate.inject(headers)
    except Exception:  # tracing must never break a request
        logger.debug("OpenTelemetry context not injected", exc_info=True)


def _masked(name: str, value: str) -> str:
    return "***" if name.lower() in _SECRET_HEADERS else value


def dump_exchange(
    url: str,
    label: str,
    headers: Mapping[str, str],
    body: bytes | None,
    response: Response,
    retry_count: int,
) -> None:
    """``TINKEX_DUMP_HEADERS``: the request and its answer, headers masked, bodies by size."""
    lines = [f"> {label.partition(' ')[0]} {url} (attempt {retry_count})"]
    lines += [f">   {name}: {_masked(name, value)}" for name, value in headers.items()]
    if body is not None:
        lines.append(f">   ({len(body)} bytes)")
    lines.append(f"< {response.status_code} in {response.elapsed:.3f} s")
    lines += [f"<   {name}: {_masked(name, value)}" for name, value in response.headers.items()]
    lines.append(f"<   ({len(response.content)} bytes)")
    wire_logger.info("%s", "\n".join(lines))
