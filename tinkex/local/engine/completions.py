"""Completion feeds: what ``POST /api/v1/retrieve_futures`` reports (docs/protocol.md,
"Session futures").

A client with many samples in flight on one sampling session need not long-poll each of them:
it long-polls the session's feed once, learns which requests finished or failed, and fetches
only those with ``retrieve_future`` (which then answers at once). There is one feed per
*target*, a (sampling session id, clone id) pair: a clone's ``seq_id`` values lie in
``clone * 1_000_000_000 ...``, and a clone sees only its own requests.

Every completion gets a cursor, increasing across all feeds. A poll's ``prev_cursor``
acknowledges the completions up to it, which are then dropped; the others are answered again
until acknowledged, so a client that lost an answer loses nothing. Cursors start at the
server's start time in microseconds, so a cursor of an earlier run of the server is below
every cursor of this one and acknowledges none of its completions.

Used from the event-loop thread only.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["CLONE_STRIDE", "Completion", "CompletionFeeds", "Target", "clone_of"]

#: A sampling client's clone id is its ``seq_id // CLONE_STRIDE``.
CLONE_STRIDE = 1_000_000_000

#: (sampling session id, clone id)
Target = tuple[str, int]


def clone_of(seq_id: int | None) -> int:
    """The clone id of a sample submitted under ``seq_id`` (0 without one)."""
    return 0 if seq_id is None else seq_id // CLONE_STRIDE


@dataclass(frozen=True)
class Completion:
    """One finished (``failed`` False) or failed request of a target."""

    cursor: int
    request_id: str
    failed: bool
    #: time.time() when it was added (old unacknowledged ones are evicted)
    added_at: float

    def wire(self) -> dict[str, str]:
        """The completion as ``retrieve_futures`` answers it."""
        state = "failed" if self.failed else "finished"
        return {"state": state, "request_id": self.request_id}


@dataclass
class _Feed:
    completions: deque[Completion] = field(default_factory=deque)
    #: polls waiting for the next completion
    waiters: list[asyncio.Future[None]] = field(default_factory=list)


class CompletionFeeds:
    """The feeds of every target (see the module docstring).

    Args:
        clock: wall clock (tests); its value at construction is the first cursor's base.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._cursors = itertools.count(int(clock() * 1_000_000) + 1)
        self._feeds: dict[Target, _Feed] = {}

    def add(self, target: Target, request_id: str, *, failed: bool) -> None:
        """Record that ``request_id`` of ``target`` finished (or failed); wake its polls."""
        feed = self._feeds.setdefault(target, _Feed())
        feed.completions.append(Completion(next(self._cursors), request_id, failed, self._clock()))
        waiters, feed.waiters = feed.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def acknowledge(self, target: Target, cursor: int) -> None:
        """Drop ``target``'s completions up to ``cursor`` (the client has seen them)."""
        feed = self._feeds.get(target)
        if feed is None:
            return
        while feed.completions and feed.completions[0].cursor <= cursor:
            feed.completions.popleft()
        self._forget_if_empty(target, feed)

    def after(self, target: Target, cursor: int) -> list[Completion]:
        """``target``'s completions after ``cursor``, oldest first."""
        feed = self._feeds.get(target)
        if feed is None:
            return []
        return [c for c in feed.completions if c.cursor > cursor]

    async def wait(self, target: Target, cursor: int, timeout: float) -> list[Completion]:
        """:meth:`after`, waiting up to ``timeout`` seconds for one when there is none yet."""
        found = self.after(target, cursor)
        if found or timeout <= 0:
            return found
        feed = self._feeds.setdefault(target, _Feed())
        waiter = asyncio.get_running_loop().create_future()
        feed.waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            pass
        finally:
            if waiter in feed.waiters:
                feed.waiters.remove(waiter)
            self._forget_if_empty(target, feed)
        return self.after(target, cursor)

    def drop(self, sampler_ids: set[str]) -> None:
        """Forget the feeds of these sampling sessions (they ended); their polls wake."""
        for target in [t for t in self._feeds if t[0] in sampler_ids]:
            feed = self._feeds.pop(target)
            for waiter in feed.waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def evict(self, before: float) -> int:
        """Drop completions added before time ``before`` that nobody acknowledged (a client
        that went away); returns how many."""
        dropped = 0
        for target, feed in list(self._feeds.items()):
            while feed.completions and feed.completions[0].added_at < before:
                feed.completions.popleft()
                dropped += 1
            self._forget_if_empty(target, feed)
        return dropped

    def pending(self) -> int:
        """How many completions are kept (not acknowledged yet)."""
        return sum(len(feed.completions) for feed in self._feeds.values())

    def _forget_if_empty(self, target: Target, feed: _Feed) -> None:
        if not feed.completions and not feed.waiters and self._feeds.get(target) is feed:
            del self._feeds[target]
