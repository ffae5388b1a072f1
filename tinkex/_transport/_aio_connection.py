"""One HTTP/1.1 keep-alive connection of :class:`~tinkex._transport.aio.AsyncTransport`.

asyncio's streams give each connection three objects (a ``StreamReader``, a ``StreamWriter``
and their protocol, whose drain waiters alone are a 760-byte ``deque``) and each read two
coroutines (``readuntil`` and ``_wait_for_data``); a client with thousands of samples in flight
holds that once per sample. :class:`Connection` buffers what arrives and hands it to the one
request that uses the connection at a time, with the exceptions the streams raise
(``IncompleteReadError`` when the server closes early, the ``OSError`` of a broken connection).

Two kinds feed it. A plain TCP connection to an IP address (``http://127.0.0.1:PORT`` of
``tinkex serve``) is a :class:`SocketConnection`: a non-blocking socket on the loop's selector,
read and written directly. Opening one of those costs about half of what
``loop.create_connection`` does (no resolver step, no transport object with its waiter, three
scheduled callbacks, address look-ups and weak registry entry), and thousands of samples in
flight open thousands. TLS, and host names (which need the resolver), go through asyncio's
transports: :class:`ProtocolConnection`.
"""

from __future__ import annotations

import abc
import asyncio
import contextvars
import errno
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import ssl as _ssl

__all__ = [
    "Connection",
    "ProtocolConnection",
    "SocketConnection",
    "ip_address_of",
    "open_connection",
    "open_socket_connection",
    "outside_context",
    "selector_loop",
]

T = TypeVar("T")

#: Most bytes one read takes from the socket (asyncio's transports read as much).
_RECV_SIZE = 256 * 1024


def outside_context(schedule: Callable[..., T], *args: Any) -> T:
    """``schedule(*args)`` in an empty context: for loop callbacks (a socket's reader, a
    timer) that outlive the request that set them up. asyncio keeps a copy of the current
    context with each callback, and a request's context holds what its caller set (the client
    of the call, telemetry metadata): an idle connection would keep those alive.
    """
    return contextvars.Context().run(schedule, *args)


class Connection(abc.ABC):
    """The bytes received on a connection and not read yet, and the reads of one request.

    Its kinds say how bytes go out and how the connection ends (:meth:`reusable`,
    :meth:`write`, :meth:`close`); what arrives is fed to :meth:`_received` / :meth:`_ended`.
    """

    __slots__ = ("_buffer", "_closed_by", "_eof", "_waiter", "idle_since")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._waiter: asyncio.Future[None] | None = None
        self._eof = False
        #: why the connection was lost (None: a clean close, or not lost)
        self._closed_by: BaseException | None = None
        #: loop time its last request ended (set by the transport that keeps it idle)
        self.idle_since = 0.0

    @abc.abstractmethod
    def reusable(self) -> bool:
        """Whether an idle connection can carry another request (a server that closed it
        has sent EOF already; one that sent something unasked is not trusted either)."""

    @abc.abstractmethod
    def write(self, data: bytes) -> None:
        """Send ``data`` (what the socket does not take at once is sent when it can)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection (idempotent)."""

    def expire(self) -> None:
        """The request's read deadline passed: close the connection; its read raises
        ``TimeoutError`` (as under ``asyncio.timeout``)."""
        self._ended(TimeoutError())
        self.close()

    async def read_until(self, separator: bytes, limit: int) -> bytes:
        """The bytes up to and including ``separator``.

        Raises:
            ValueError: ``limit`` bytes came without it.
            asyncio.IncompleteReadError: the server closed the connection before it.
        """
        searched = 0
        while True:
            at = self._buffer.find(separator, searched)
            end = at + len(separator) if at >= 0 else len(self._buffer)
            if end > limit:
                raise ValueError(f"no {separator!r} within the first {limit} bytes of the answer")
            if at >= 0:
                return self._take(end)
            searched = max(0, len(self._buffer) - len(separator) + 1)
            await self._more(None)

    async def read_exactly(self, size: int) -> bytes:
        """The next ``size`` bytes.

        Raises:
            asyncio.IncompleteReadError: the server closed the connection before them.
        """
        while len(self._buffer) < size:
            await self._more(size)
        return self._take(size)

    async def read_to_eof(self) -> bytes:
        """Everything until the server closes the connection."""
        while not self._eof:
            await self._arrival()
        if self._closed_by is not None:
            raise self._closed_by
        return self._take(len(self._buffer))

    def _take(self, size: int) -> bytes:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def _more(self, expected: int | None) -> asyncio.Future[None]:
        """What to await for more bytes; at the connection's end, raises instead."""
        if self._eof:
            if self._closed_by is not None:
                raise self._closed_by
            raise asyncio.IncompleteReadError(bytes(self._buffer), expected)
        return self._arrival()

    def _arrival(self) -> asyncio.Future[None]:
        # A plain future (not a coroutine that awaits one): a read waiting for its answer
        # holds one frame, not three, once per request in flight.
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        return waiter

    def _received(self, data: bytes) -> None:
        self._buffer += data
        self._wake()

    def _ended(self, exc: BaseException | None) -> None:
        """The connection's end: EOF from the server, a broken connection, or our close."""
        self._eof = True
        if self._closed_by is None:
            self._closed_by = exc
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class ProtocolConnection(Connection, asyncio.Protocol):
    """A connection over an asyncio transport (TLS, or a host name to resolve)."""

    __slots__ = ("_transport",)

    def __init__(self) -> None:
        super().__init__()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._received(data)

    def eof_received(self) -> bool:
        self._ended(None)
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended(exc)

    def reusable(self) -> bool:
        transport = self._transport
        return not (transport is None or transport.is_closing() or self._eof or self._buffer)

    def write(self, data: bytes) -> None:
        assert self._transport is not None
        self._transport.write(data)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class SocketConnection(Connection):
    """A plain TCP connection: a non-blocking socket read and written on the loop's selector.

    The socket is watched for reading while the connection is open (EOF or a reset while it
    is idle makes it not :meth:`reusable`); what a ``send`` does not take is kept and sent
    when the socket is writable again.
    """

    __slots__ = ("_fd", "_loop", "_sock", "_unsent")

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        super().__init__()
        self._loop = loop
        self._sock: socket.socket | None = sock
        self._fd = sock.fileno()
        self._unsent: bytearray | None = None
        outside_context(loop.add_reader, self._fd, self._readable)

    def reusable(self) -> bool:
        return not (self._sock is None or self._eof or self._buffer or self._unsent)

    def write(self, data: bytes) -> None:
        if self._unsent is not None:
            self._unsent += data
            return
        if self._sock is None:
            return  # closed: the read that follows raises, as after a transport's close
        try:
            sent = self._sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._lost(exc)
            return
        if sent < len(data):
            self._unsent = bytearray(memoryview(data)[sent:])
            outside_context(self._loop.add_writer, self._fd, self._writable)

    def close(self) -> None:
        self._lost(None)

    def _readable(self) -> None:
        if self._sock is None:
            return
        try:
            data = self._sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        if data:
            self._received(data)
        else:
            self._lost(None)  # the server closed its side

    def _writable(self) -> None:
        unsent = self._unsent
        if self._sock is None or unsent is None:
            return
        try:
            sent = self._sock.send(unsent)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        del unsent[:sent]
        if not unsent:
            self._unsent = None
            self._loop.remove_writer(self._fd)

    def _lost(self, exc: BaseException | None) -> None:
        """Stop watching and close the socket (idempotent); readers see the end."""
        sock, self._sock = self._sock, None
        if sock is not None:
            self._loop.remove_reader(self._fd)
            if self._unsent is not None:
                self._unsent = None
                self._loop.remove_writer(self._fd)
            sock.close()
        self._ended(exc)


def ip_address_of(host: str, port: int) -> tuple[socket.AddressFamily, tuple[str, int]] | None:
    """The socket family and address of ``host`` when it is an IP address (no resolver
    needed), else None."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return family, (host, port)
    return None


def selector_loop(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop`` watches sockets with a selector (``add_reader``), which a
    :class:`SocketConnection` needs; Windows' default proactor loop does not."""
    return isinstance(loop, asyncio.SelectorEventLoop)


#: ``connect`` answers of a connection still being set up.
_IN_PROGRESS = (errno.EINPROGRESS, errno.EALREADY, errno.EINTR)


async def open_socket_connection(
    family: socket.AddressFamily, address: tuple[str, int], timeout: float
) -> SocketConnection:
    """A new plain TCP connection to ``address`` (an IP address, see :func:`ip_address_of`).

    Raises:
        TimeoutError: not connected within ``timeout`` seconds.
        OSError: the connection failed (``ConnectionRefusedError``, ...), with the message
            asyncio's ``create_connection`` gives it.
    """
    loop = asyncio.get_running_loop()
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        # Requests are written whole, and small ones must not wait for an ACK (as asyncio's
        # transports set it).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        error = sock.connect_ex(address)
        if error in _IN_PROGRESS:
            # Over loopback the handshake is done by the time the first call returns: asking
            # again says so (0) without watching the socket and a timer for it.
            error = sock.connect_ex(address)
            if error == errno.EISCONN:
                error = 0
        if error in _IN_PROGRESS:
            async with asyncio.timeout(timeout):
                await _writable(loop, sock.fileno())
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            raise OSError(error, f"Connect call failed {address}")
        return SocketConnection(loop, sock)
    except BaseException:
        sock.close()
        raise


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    writable = loop.create_future()
    loop.add_writer(fd, _set_done, writable)
    try:
        await writable
    finally:
        loop.remove_writer(fd)


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def open_connection(
    host: str, port: int, *, ssl: _ssl.SSLContext | None, server_hostname: str | None
) -> ProtocolConnection:
    """A new connection to ``host:port`` over an asyncio transport (TLS when ``ssl`` is
    given)."""
    loop = asyncio.get_running_loop()
    connect = loop.create_connection(
        ProtocolConnection, host, port, ssl=ssl, server_hostname=server_hostname
    )
    # Set up in an empty context: the transport's reader keeps a copy (see outside_context).
    _, connection = await loop.create_task(connect, context=contextvars.Context())
    return connection
