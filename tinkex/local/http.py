"""A small asyncio HTTP/1.1 server (stdlib only) for the local Tinker server.

Supports keep-alive, ``Content-Length`` and chunked request bodies, a body size limit (413) and
aborting a connection on purpose (fault injection). Responses always carry ``Content-Length``.
The application is one coroutine ``handler(request) -> Response``.

A connection that opens with a TLS handshake (a client given an ``https://`` URL) is answered
at once with a plain-HTTP 400 naming ``http://`` (TLS clients report it as a wrong version
number) and closed, instead of waiting for a request head that never comes.

An answer sent before the request was read in full (413, 431, a malformed body) ends the
connection with a *lingering close*, as real servers do: ``Connection: close``, a half-close
(FIN after the answer), then what the client still sends is read and discarded until it closes,
for at most :data:`LINGER_SECONDS`. Closing a socket with unread data would reset the
connection, and the reset can destroy the answer before the client reads it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

logger = logging.getLogger("tinkex.local.http")

MAX_HEADER_BYTES = 64 * 1024
DEFAULT_MAX_BODY_BYTES = 512 * 1024 * 1024
#: How long a connection answered early keeps discarding what the client still sends.
LINGER_SECONDS = 5.0
#: The first byte of a TLS record carrying a handshake (a ClientHello): no HTTP method starts so.
TLS_HANDSHAKE = b"\x16"
#: One encoder for every JSON answer (``json.dumps`` with options builds a new one per call).
_encode_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


@dataclass
class Request:
    """One parsed HTTP request. Header names are lower-case; ``path`` excludes the query."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""
    #: the client's IP address ("" when unknown)
    peer: str = ""

    def header(self, name: str, default: str = "") -> str:
        """The value of header ``name`` (case-insensitive) or ``default``."""
        return self.headers.get(name.lower(), default)


@dataclass
class Response:
    """An HTTP response. ``abort=True`` drops the connection instead of answering."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    abort: bool = False


class HTTPError(Exception):
    """Raised by handlers: answered as ``{"detail": detail}`` with ``status``."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response (compact, UTF-8)."""
    body = _encode_json(obj).encode()
    return Response(status=status, body=body, headers=dict(headers or {}))


def error_response(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    """A FastAPI-style error ``{"detail": detail}``."""
    return json_response({"detail": detail}, status=status, headers=headers)


Handler = Callable[[Request], Awaitable[Response]]


class _BadRequest(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _host_of(writer: asyncio.StreamWriter) -> str:
    """``host:port`` the client connected to (for messages)."""
    sockname = writer.get_extra_info("sockname")
    if not isinstance(sockname, tuple) or len(sockname) < 2:
        return "HOST:PORT"
    host = str(sockname[0])
    return f"[{host}]:{sockname[1]}" if ":" in host else f"{host}:{sockname[1]}"


class HTTPServer:
    """Serves ``handler`` on ``host:port`` inside the running event loop.

    Call :meth:`start` and :meth:`stop` from the loop that runs the server.
    """

    def __init__(
        self,
        handler: Handler,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        backlog: int = 4096,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self._handler = handler
        self._host = host
        self._port = port
        self._backlog = backlog
        self._max_body_bytes = max_body_bytes
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._closing = False

    @property
    def port(self) -> int:
        """The bound port (useful with ``port=0``)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("HTTPServer is not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Bind and start accepting connections."""
        self._server = await asyncio.start_server(
            self._on_connection,
            self._host,
            self._port,
            backlog=self._backlog,
            limit=MAX_HEADER_BYTES,
            reuse_address=True,
        )

    async def stop(self) -> None:
        """Stop accepting, close every open connection and wait for the connection tasks."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._writers.add(writer)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        except Exception:  # a bug in the server must not kill the loop
            logger.exception("unexpected error on an HTTP connection")
        finally:
            self._connections.discard(task)
            self._writers.discard(writer)
            try:
                writer.close()
            except Exception:
                pass

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = True
        peername = writer.get_extra_info("peername")
        peer = str(peername[0]) if isinstance(peername, tuple) and peername else ""
        while not self._closing:
            try:
                head = await self._read_head(reader, writer, first)
            except asyncio.IncompleteReadError:
                return  # client closed the connection between requests
            except asyncio.LimitOverrunError:
                await self._answer_early(
                    reader, writer, error_response(431, "request headers are too large")
                )
                return
            if head is None:
                return  # a TLS handshake, answered
            first = False
            try:
                request, keep_alive = self._parse_head(head)
                request.peer = peer
                request.body = await self._read_body(reader, request)
            except _BadRequest as exc:
                await self._answer_early(reader, writer, error_response(exc.status, exc.detail))
                return
            try:
                response = await self._handler(request)
            except HTTPError as exc:
                response = error_response(exc.status, exc.detail, exc.headers)
            except Exception as exc:  # never crash on a handler bug: report it as a 500
                logger.exception("handler failed for %s %s", request.method, request.path)
                response = error_response(
                    500, f"internal server error: {type(exc).__name__}: {exc}"
                )
            if response.abort:
                transport = writer.transport
                transport.abort()
                return
            await self._write(
                writer, response, close=not keep_alive, head_only=request.method == "HEAD"
            )
            if not keep_alive:
                return

    async def _read_head(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first: bool
    ) -> bytes | None:
        """The next request head; None when the connection opened with a TLS handshake, which
        is answered at once (a client told ``https://`` for this plain-HTTP server would
        otherwise wait for a head that never comes).

        Raises:
            asyncio.IncompleteReadError: the client closed the connection.
            asyncio.LimitOverrunError: the head is larger than the limit.
        """
        if not first:
            return await reader.readuntil(b"\r\n\r\n")
        start = await reader.readexactly(1)
        if start == TLS_HANDSHAKE:
            detail = (
                "this is a plain-HTTP server and the client spoke TLS to it: use an http:// URL "
                f"(http://{_host_of(writer)}), not https://"
            )
            logger.info("answered a TLS handshake on the plain-HTTP port with 400")
            await self._answer_early(reader, writer, error_response(400, detail))
            return None
        return start + await reader.readuntil(b"\r\n\r\n")

    async def _answer_early(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, response: Response
    ) -> None:
        """Answer a request whose body was not read, then close lingeringly (module docstring)."""
        await self._write(writer, response, close=True)
        if writer.can_write_eof():
            writer.write_eof()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LINGER_SECONDS
        while (remaining := deadline - loop.time()) > 0:
            try:
                if not await asyncio.wait_for(reader.read(64 * 1024), remaining):
                    return  # the client closed its side: nothing is left unread
            except TimeoutError:
                return

    def _parse_head(self, head: bytes) -> tuple[Request, bool]:
        try:
            text = head.decode("latin-1")
        except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes everything
            raise _BadRequest(400, "request head is not latin-1") from None
        lines = text.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequest(400, f"malformed request line {lines[0][:100]!r}")
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep:
                raise _BadRequest(400, f"malformed header line {line[:100]!r}")
            key = name.strip().lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        path, _, query_string = target.partition("?")
        query = dict(urllib.parse.parse_qsl(query_string, keep_blank_values=True))
        connection = headers.get("connection", "").lower()
        if version == "HTTP/1.0":
            keep_alive = "keep-alive" in connection
        else:
            keep_alive = "close" not in connection
        return Request(method=method.upper(), path=path, query=query, headers=headers), keep_alive

    async def _read_body(self, reader: asyncio.StreamReader, request: Request) -> bytes:
        if "chunked" in request.headers.get("transfer-encoding", "").lower():
            return await self._read_chunked(reader)
        length_text = request.headers.get("content-length")
        if not length_text:
            return b""
        try:
            length = int(length_text)
        except ValueError:
            raise _BadRequest(400, f"invalid Content-Length {length_text!r}") from None
        if length < 0:
            raise _BadRequest(400, f"invalid Content-Length {length_text!r}")
        if length > self._max_body_bytes:
            raise _BadRequest(
                413,
                f"request body of {length} bytes exceeds the limit of {self._max_body_bytes} bytes",
            )
        if length <= MAX_HEADER_BYTES:
            return await reader.readexactly(length) if length else b""
        return await _read_large_body(reader, length)

    async def _read_chunked(self, reader: asyncio.StreamReader) -> bytes:
        body = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequest(400, f"malformed chunk size {size_line[:40]!r}") from None
            if size == 0:
                # trailers end with an empty line
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return bytes(body)
            if len(body) + size > self._max_body_bytes:
                raise _BadRequest(
                    413, f"request body exceeds the limit of {self._max_body_bytes} bytes"
                )
            body += await reader.readexactly(size)
            await reader.readexactly(2)

    async def _write(
        self,
        writer: asyncio.StreamWriter,
        response: Response,
        *,
        close: bool = False,
        head_only: bool = False,
    ) -> None:
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [f"HTTP/1.1 {response.status} {reason}"]
        if response.content_type is not None:
            lines.append(f"Content-Type: {response.content_type}")
        lines.append(f"Content-Length: {len(response.body)}")
        for name, value in response.headers.items():
            lines.append(f"{name}: {value}")
        if close:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        writer.write(head if head_only else head + response.body)
        await writer.drain()


async def _read_large_body(reader: asyncio.StreamReader, length: int) -> bytes:
    """``length`` body bytes, read piece by piece and joined once.

    ``readexactly`` would collect a large body in the reader's buffer, which grows by every
    received piece (reallocated and copied as it grows, fresh memory faulted in each time)
    and pauses/resumes the transport past twice the stream limit; here the reader's buffer
    stays small and the pieces are copied once, into the body (no zero-filled staging buffer
    copied again: 2 MB from 64 KiB pieces ~2 -> ~0.2 ms).

    Raises:
        asyncio.IncompleteReadError: the connection ended before ``length`` bytes, as
            ``readexactly`` does.
    """
    pieces: list[bytes] = []
    filled = 0
    while filled < length:
        piece = await reader.read(length - filled)
        if not piece:
            raise asyncio.IncompleteReadError(b"".join(pieces), length)
        pieces.append(piece)
        filled += len(piece)
    return b"".join(pieces)
