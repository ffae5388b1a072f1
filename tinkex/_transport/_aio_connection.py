"""One HTTP/1.1 keep-alive connection of :class:`~tinkex._transport.aio.AsyncTransport`.

asyncio's streams give each connection three objects (a ``StreamReader``, a ``StreamWriter``
and their protocol, whose drain waiters alone are a 760-byte ``deque``) and each read two
coroutines (``readuntil`` and ``_wait_for_data``); a client with thousands of samples in flight
holds that once per sample. :class:`Connection` is the protocol itself: it buffers what arrives
and hands it to the one request that uses the connection at a time, ~1.5 KB less per
connection, with the exceptions the streams raise (``IncompleteReadError`` when the server
closes early, the transport's ``OSError`` when the connection breaks).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl as _ssl

__all__ = ["Connection", "open_connection"]


class Connection(asyncio.Protocol):
    """A connection's transport and the bytes received and not read yet."""

    __slots__ = ("_buffer", "_closed_by", "_eof", "_transport", "_waiter")

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[None] | None = None
        self._eof = False
        #: why the connection was lost (None: a clean close, or not lost)
        self._closed_by: BaseException | None = None

    # ---- asyncio's protocol callbacks ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._closed_by = exc
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ---- used by the request -------------------------------------------------------------

    def reusable(self) -> bool:
        """Whether an idle connection can carry another request (a server that closed it
        has sent EOF already; one that sent something unasked is not trusted either)."""
        transport = self._transport
        return not (transport is None or transport.is_closing() or self._eof or self._buffer)

    def write(self, data: bytes) -> None:
        """Send ``data`` (the transport buffers what the socket does not take at once)."""
        assert self._transport is not None
        self._transport.write(data)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._transport is not None:
            self._transport.close()

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


async def open_connection(
    host: str, port: int, *, ssl: _ssl.SSLContext | None, server_hostname: str | None
) -> Connection:
    """A new connection to ``host:port`` (TLS when ``ssl`` is given)."""
    _, connection = await asyncio.get_running_loop().create_connection(
        Connection, host, port, ssl=ssl, server_hostname=server_hostname
    )
    return connection
