"""ReadDeadlines: one timer for the read deadlines of an AsyncTransport's requests."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from tinkex._config import ClientSettings
from tinkex._exceptions import APITimeoutError
from tinkex._transport import Transport
from tinkex._transport._aio_deadlines import ReadDeadlines
from tinkex._transport.aio import AsyncTransport


class Recorder:
    """Stands in for a Connection: records when it was expired (loop time)."""

    def __init__(self, name: str, expired: list[tuple[str, float]]) -> None:
        self.name = name
        self.expired = expired

    def expire(self) -> None:
        self.expired.append((self.name, asyncio.get_running_loop().time()))


def test_each_request_expires_at_its_own_deadline_and_ended_ones_never() -> None:
    async def main() -> tuple[list[tuple[str, float]], float, int]:
        loop = asyncio.get_running_loop()
        deadlines = ReadDeadlines()
        expired: list[tuple[str, float]] = []
        start = loop.time()

        def watch(name: str, seconds: float) -> int:
            return deadlines.watch(Recorder(name, expired), seconds)  # type: ignore[arg-type]

        watch("long", 0.4)
        ended = watch("ended", 0.1)
        watch("short", 0.1)  # same length, after the ended one: it must still expire
        await asyncio.sleep(0.05)
        watch("shorter-later", 0.1)  # earlier than "long": the timer moves forward
        deadlines.end(ended)
        for _ in range(100):  # bounds on lateness are loose: the machine may be busy
            if len(expired) == 3:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)
        return expired, start, len(deadlines)

    expired, start, left = asyncio.run(main())
    assert [name for name, _ in expired] == ["short", "shorter-later", "long"]
    offsets = [when - start for _, when in expired]
    # None early (a timer may fire up to the clock's resolution before its time).
    assert offsets[0] >= 0.099 and offsets[1] >= 0.149 and offsets[2] >= 0.399, offsets
    assert offsets[2] < 3.0, offsets
    assert left == 0


def test_a_request_unanswered_past_its_timeout_fails_at_that_timeout() -> None:
    # A listener that never accepts: the kernel takes the connections and the requests, and
    # nothing answers. Each request fails after its own timeout; one with a longer timeout on
    # its own connection goes on until its own deadline.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]

    async def main(base_url: str) -> list[tuple[Any, float]]:
        aio = AsyncTransport(Transport(ClientSettings(base_url=base_url, api_key="k")), 4)

        async def one(timeout: float) -> tuple[Any, float]:
            started = time.monotonic()
            try:
                result: Any = await aio.request("POST", "/api/v1/x", json={}, timeout=timeout)
            except Exception as exc:
                result = exc
            return result, time.monotonic() - started

        results = await asyncio.gather(one(0.2), one(0.6))
        await aio.close()
        return list(results)

    try:
        for host in ("127.0.0.1", "localhost"):
            (short, short_s), (long, long_s) = asyncio.run(main(f"http://{host}:{port}"))
            assert isinstance(short, APITimeoutError), short
            assert "Request timed out after 0.2 s: POST /api/v1/x" in str(short)
            assert isinstance(long, APITimeoutError), long
            assert 0.19 <= short_s < 3.0 and 0.59 <= long_s < 3.4, (short_s, long_s)
    finally:
        listener.close()
