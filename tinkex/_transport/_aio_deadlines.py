"""The read deadlines of :class:`~tinkex._transport.aio.AsyncTransport`'s requests, one timer.

``asyncio.timeout()`` around each request costs a ``Timeout``, a ``TimerHandle`` with its copy
of the context, two bound methods and a push onto (and a lazy removal from) the loop's timer
heap, whose entries compare in Python; thousands of samples in flight pay that per request.
:class:`ReadDeadlines` keeps the deadlines of one transport's requests in first-in, first-out
queues, one per timeout length (deadlines of one length come in increasing order, so each
queue is sorted), as plain floats and ints, and one loop timer for the earliest: when it
passes, the request's connection is expired (its read raises ``TimeoutError``, as under
``asyncio.timeout``). A request that ends leaves its entry behind; entries whose request has
ended are dropped as they reach the front.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from tinkex._transport._aio_connection import outside_context

if TYPE_CHECKING:
    from tinkex._transport._aio_connection import Connection

__all__ = ["ReadDeadlines"]


class ReadDeadlines:
    """Deadlines of the requests in flight on one event loop (use it on that loop only).

    ``watch(connection, seconds)`` starts one and returns its number; ``end(number)`` when the
    request is over (answered or not). A request still running ``seconds`` after ``watch`` has
    its connection expired (:meth:`Connection.expire`).
    """

    def __init__(self) -> None:
        #: per timeout length: (deadlines, request numbers), in the order watched
        self._queues: dict[float, tuple[deque[float], deque[int]]] = {}
        self._running: dict[int, Connection] = {}
        self._next = 0
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, connection: Connection, seconds: float) -> int:
        """Expire ``connection`` in ``seconds`` unless :meth:`end` comes first; the request's
        number."""
        loop = asyncio.get_running_loop()
        when = loop.time() + seconds
        number = self._next
        self._next += 1
        self._running[number] = connection
        queue = self._queues.get(seconds)
        if queue is None:
            queue = self._queues[seconds] = (deque(), deque())
        whens, numbers = queue
        self._drop_ended(whens, numbers)
        whens.append(when)
        numbers.append(number)
        timer = self._timer
        if timer is None or when < timer.when():
            if timer is not None:
                timer.cancel()
            self._timer = outside_context(loop.call_at, when, self._expire)
        return number

    def end(self, number: int) -> None:
        """Request ``number`` is over: its deadline no longer applies."""
        self._running.pop(number, None)

    def __len__(self) -> int:
        return len(self._running)

    def _drop_ended(self, whens: deque[float], numbers: deque[int]) -> None:
        while numbers and numbers[0] not in self._running:
            whens.popleft()
            numbers.popleft()

    def _expire(self) -> None:
        """The timer: expire every request past its deadline, then wait for the next one."""
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        earliest: float | None = None
        for seconds, (whens, numbers) in list(self._queues.items()):
            self._drop_ended(whens, numbers)
            while whens and whens[0] <= now:
                whens.popleft()
                connection = self._running.pop(numbers.popleft())
                connection.expire()
                self._drop_ended(whens, numbers)
            if not whens:
                del self._queues[seconds]
            elif earliest is None or whens[0] < earliest:
                earliest = whens[0]
        if earliest is not None:
            self._timer = outside_context(loop.call_at, earliest, self._expire)
