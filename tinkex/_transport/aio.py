"""The transport's requests over asyncio: HTTP/1.1 keep-alive connections on one event loop.

:class:`AsyncTransport` sends the same requests as its :class:`~tinkex._transport.Transport`
— the same headers (``Transport.request_headers``), credential, rate-limit window,
telemetry events (``tinkex._transport.events``), exceptions (``Transport._finish``,
``diagnose.connection_failure``) and retry warnings — but as coroutines on an
:class:`~tinkex._ioloop.IOLoop`, so a thousand requests waiting for the server cost a thousand
sockets, not a thousand threads. It speaks plain HTTP/1.1 (``Content-Length`` or chunked
bodies, keep-alive) over TCP or TLS and nothing more: no proxies (:func:`supports` says when
the threaded transport must be used instead), no redirects, no compression (none is asked
for). Retries are the caller's (``RetryPolicy.arun``).
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from tinkex._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
)
from tinkex._transport._aio_connection import (
    Connection,
    ip_address_of,
    open_connection,
    open_socket_connection,
    outside_context,
    selector_loop,
)
from tinkex._transport._aio_deadlines import ReadDeadlines
from tinkex._transport._response import Response, decode_zstd
from tinkex._transport.auth import invalid_token
from tinkex._transport.diagnose import connection_failure
from tinkex._transport.events import emit_exception, emit_start
from tinkex._transport.wire_dump import dump_exchange

if TYPE_CHECKING:
    import ssl

    from tinkex._transport.transport import Transport

__all__ = ["AsyncTransport", "supports"]

#: Longest status line + headers accepted (the server's answers are a few hundred bytes).
_MAX_HEAD = 64 * 1024
#: How long an idle connection beyond ``max_connections`` is kept for the next wave.
SPARE_IDLE_SECONDS = 30.0


def supports(transport: Transport) -> str | None:
    """Why ``transport``'s requests cannot go over asyncio (None: they can)."""
    scheme = urlsplit(transport.base_url).scheme
    if scheme not in ("http", "https"):
        return f"unsupported URL scheme {scheme!r}"
    if transport.proxies_for(scheme):
        return "a proxy is configured"
    return None


class _Headers(dict[str, str]):
    """Response headers keyed by lower-case name; lookups ignore case."""

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


class AsyncTransport:
    """``transport``'s requests as coroutines; create and use it on one event loop only.

    Args:
        transport: the transport whose settings, headers, credential and limiter are used.
        max_connections: idle connections kept open for reuse for as long as the server
            keeps them. Like the threaded transport's pool (``pool_maxsize``, non-blocking),
            it does not bound the requests in flight: callers do (the sampling client's
            concurrency limit).

    A wave of requests in flight at once (thousands of samples waiting for a slow server)
    needs a connection each; when it ends, the idle connections beyond ``max_connections``
    are kept for :data:`SPARE_IDLE_SECONDS` more (up to half the process's open-file limit),
    so the next wave reuses them instead of setting them all up again, on both sides.
    Idle connections are never more than the most requests that were in flight at once.
    """

    def __init__(self, transport: Transport, max_connections: int) -> None:
        parts = urlsplit(transport.base_url)
        self._transport = transport
        self._tls = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._tls else 80)
        self._prefix = parts.path.rstrip("/")
        query = transport.settings.default_query
        #: ``settings.default_query``, sent with every request (these carry no other query).
        self._query = f"?{urlencode(query)}" if query else ""
        default_port = (self._tls and self._port == 443) or (not self._tls and self._port == 80)
        self._host_header = self._host if default_port else f"{self._host}:{self._port}"
        self._ssl: ssl.SSLContext | None = _ssl_context(transport.verify) if self._tls else None
        #: plain TCP to an IP address: connections are sockets on the loop's selector
        self._address = None if self._tls else ip_address_of(self._host, self._port)
        #: oldest first; the most recently used is reused first (the others age out)
        self._idle: deque[Connection] = deque()
        self._deadlines = ReadDeadlines()
        self._max_idle = max_connections
        self._max_spare = max(max_connections, _open_file_limit() // 2)
        self._spare_timer: asyncio.TimerHandle | None = None
        self._in_flight = 0
        self._connect_timeout = transport.settings.connect_timeout
        self._timeout = transport.settings.timeout

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        accept: str = "application/json",
    ) -> Response:
        """Send ``method path`` once; the 2xx :class:`Response`, else the transport's exception.

        The body is ``json`` encoded, or ``content`` as given (both ``application/json``).

        A 401 ``invalid_token`` with a JWT credential refreshes it and replays once, as the
        threaded transport does; failures that a retry loop around this call goes on from
        feed the transport's :class:`~tinkex._transport.retry_warning.RetryWarning`.

        Raises:
            APIStatusError: a non-2xx answer; APITimeoutError; APIConnectionError.
        """
        transport = self._transport
        read_timeout = self._timeout if timeout is None else timeout
        request_headers, body = transport.request_headers.build(
            method, json, content, None, headers, accept, read_timeout
        )
        request_headers["x-stainless-retry-count"] = "0"
        jwt = transport.credential_provider
        if jwt is not None and not (headers and "X-API-Key" in headers):
            # A refresh runs on the credential's worker thread: the loop goes on meanwhile.
            request_headers["X-API-Key"] = await jwt.atoken()
        try:
            response = await self._send(method, path, request_headers, body, read_timeout)
        except AuthenticationError as exc:
            if jwt is None or not invalid_token(exc):
                raise
            request_headers["X-API-Key"] = await jwt.areplace(request_headers["X-API-Key"])
            return await self._send(method, path, request_headers, body, read_timeout)
        except (APIConnectionError, APIStatusError) as exc:
            # The caller's loop retries (RetryPolicy.arun publishes until when): the same
            # "cannot reach ...; retrying" warning as the threaded transport's, and one streak.
            transport.retry_warning.failed(exc, f"{method} {path}", None, 1)
            raise
        transport.retry_warning.succeeded()
        return response

    @property
    def base_url(self) -> str:
        """The server URL requests are sent to."""
        return self._transport.base_url

    @property
    def in_flight(self) -> int:
        """Requests sent and not answered yet."""
        return self._in_flight

    async def close(self) -> None:
        """Close the idle connections (busy ones close when their request ends)."""
        idle, self._idle = self._idle, deque()
        if self._spare_timer is not None:
            self._spare_timer.cancel()
            self._spare_timer = None
        for connection in idle:
            connection.close()

    # ---- idle connections -------------------------------------------------------------------

    def _keep(self, connection: Connection) -> None:
        """``connection``'s request is over and it can carry another: keep it idle, or close
        it when as many are idle as may be."""
        idle = self._idle
        if len(idle) >= self._max_spare:
            connection.close()
            return
        connection.idle_since = asyncio.get_running_loop().time()
        idle.append(connection)
        if len(idle) > self._max_idle and self._spare_timer is None:
            self._spare_timer = outside_context(
                asyncio.get_running_loop().call_later, SPARE_IDLE_SECONDS, self._close_spares
            )

    def _close_spares(self) -> None:
        """The timer: close the idle connections beyond ``max_connections`` that were idle
        for :data:`SPARE_IDLE_SECONDS`; wait for the next one to age."""
        self._spare_timer = None
        idle = self._idle
        expired = asyncio.get_running_loop().time() - SPARE_IDLE_SECONDS
        while len(idle) > self._max_idle and idle[0].idle_since <= expired:
            idle.popleft().close()
        if len(idle) > self._max_idle:
            self._spare_timer = asyncio.get_running_loop().call_later(
                idle[0].idle_since - expired, self._close_spares
            )

    # ---- one exchange ----------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes | None,
        read_timeout: float,
    ) -> Response:
        transport = self._transport
        label = f"{method} {path}"
        observed = emit_start(method, path, 0, headers)
        started = time.perf_counter()
        limiter = transport.rate_limiter
        while (remaining := limiter.remaining()) > 0:
            await asyncio.sleep(remaining)
        try:
            connection = await self._connection(label)
            self._in_flight += 1
            # One timer for all requests in flight, not asyncio.timeout() each (_aio_deadlines).
            deadline = self._deadlines.watch(connection, read_timeout)
            try:
                status, answer_headers, content = await self._exchange(
                    connection, method, path, headers, body
                )
            except BaseException:
                connection.close()
                raise
            finally:
                self._deadlines.end(deadline)
                self._in_flight -= 1
        except TimeoutError as exc:
            emit_exception(method, path, 0, started, exc, headers)
            raise APITimeoutError(
                label, message=f"Request timed out after {read_timeout:g} s: {label}"
            ) from exc
        except (OSError, EOFError, ValueError, asyncio.IncompleteReadError) as exc:
            emit_exception(method, path, 0, started, exc, headers)
            raise connection_failure(exc, transport.base_url, label) from exc
        response = Response(
            status, answer_headers, content, request=label, elapsed=time.perf_counter() - started
        )
        if transport.settings.dump_headers:
            dump_exchange(transport.base_url + path, label, headers, body, response, 0)
        return transport._finish(response, method, 0, observed, headers)

    async def _connection(self, label: str) -> Connection:
        while self._idle:
            connection = self._idle.pop()
            if connection.reusable():
                return connection
            connection.close()
        try:
            if self._address is not None and selector_loop(asyncio.get_running_loop()):
                return await open_socket_connection(*self._address, self._connect_timeout)
            async with asyncio.timeout(self._connect_timeout):
                return await open_connection(
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._tls else None,
                )
        except TimeoutError as exc:
            raise APITimeoutError(
                label, message=f"Connecting timed out after {self._connect_timeout:g} s: {label}"
            ) from exc

    async def _exchange(
        self,
        connection: Connection,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes | None,
    ) -> tuple[int, _Headers, bytes]:
        target = f"{self._prefix}{path}{self._query}"
        # Built and written by a plain function: this frame waits for the answer, and what it
        # holds meanwhile is held once per request in flight (thousands of samples).
        _write_request(connection, method, target, self._host_header, headers, body)
        status, version, answer = _parse_head(await connection.read_until(b"\r\n\r\n", _MAX_HEAD))
        content = await _read_body(connection, answer, method, status)
        encoding = answer.get("content-encoding")
        if encoding in ("gzip", "deflate"):
            content = zlib.decompress(content, 47 if encoding == "gzip" else 15)
        elif encoding == "zstd":  # offered in Accept-Encoding, as the threaded transport does
            content = decode_zstd(content, f"{method} {path}")
        keep = version != "HTTP/1.0" and "close" not in answer.get("connection", "").lower()
        framed = "content-length" in answer or answer.get("transfer-encoding") == "chunked"
        if keep and framed:
            self._keep(connection)
        else:
            connection.close()
        return status, answer, content


def _write_request(
    connection: Connection,
    method: str,
    target: str,
    host: str,
    headers: Mapping[str, str],
    body: bytes | None,
) -> None:
    """Write the request line, ``headers`` and ``body`` (framed by ``Content-Length``)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    if body is not None or method not in ("GET", "HEAD"):
        lines.append(f"Content-Length: {len(body) if body is not None else 0}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    connection.write(head + body if body else head)


def _parse_head(raw: bytes) -> tuple[int, str, _Headers]:
    lines = raw.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest.partition(" ")[0]
    if not version.startswith("HTTP/") or not code.isdigit():
        raise ValueError(f"malformed HTTP status line {lines[0][:100]!r}")
    headers = _Headers()
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return int(code), version, headers


async def _read_body(connection: Connection, headers: _Headers, method: str, status: int) -> bytes:
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts: list[bytes] = []
        while True:
            size = int((await connection.read_until(b"\r\n", _MAX_HEAD)).split(b";")[0], 16)
            if size == 0:
                await connection.read_until(b"\r\n", _MAX_HEAD)  # no trailers are sent to us
                return b"".join(parts)
            parts.append(await connection.read_exactly(size))
            await connection.read_exactly(2)
    length = headers.get("content-length")
    if length is not None:
        return await connection.read_exactly(int(length))
    return await connection.read_to_eof()


def _open_file_limit() -> int:
    """The process's soft limit of open files (0 where it cannot be read)."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return 0
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 1 << 20 if soft == resource.RLIM_INFINITY else soft


def _ssl_context(verify: Any) -> ssl.SSLContext:
    """TLS settings as the threaded transport's ``verify`` says (a CA bundle path or a bool)."""
    import ssl  # only https servers need it (~10 ms of import)

    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    import certifi  # requests' CA bundle, so both transports trust the same roots

    return ssl.create_default_context(cafile=certifi.where())
