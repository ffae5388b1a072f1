"""Logging the server's "paused" queue states of training and model-creation waits (issue 11.8).

A future's polls say when the server queues its request (``paused_capacity``,
``paused_rate_limit``; docs/protocol.md, "Futures"). Pauses are normal for a while, so, as the
official SDK does, a wait is reported only once it has been paused for ``PAUSE_GRACE`` seconds,
then at most once every ``LOG_INTERVAL`` seconds, as a WARNING of the ``tinkex`` logger. Every
change is also the telemetry event ``tinkex.future.queue_state`` (attach a handler to observe
them yourself).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from tinkex._futures import QueueState

__all__ = ["LOG_INTERVAL", "PAUSE_GRACE", "QueueStateLogger"]

logger = logging.getLogger("tinkex")

#: A pause is reported once it has lasted this long (making room can take a while).
PAUSE_GRACE = 15 * 60.0
#: At most one report per this many seconds.
LOG_INTERVAL = 60.0

_DEFAULT_REASONS = {
    QueueState.PAUSED_RATE_LIMIT: "concurrent training clients rate limit hit",
    QueueState.PAUSED_CAPACITY: "the Tinker backend is short on capacity, please wait",
}


class QueueStateLogger:
    """A queue-state observer (``observer(state, reason)``) that logs long pauses.

    Args:
        identifier: what waits (a model id, a base model name).
        prefix: what kind of wait (``"Training"``, ``"Model creation"``).
        grace: seconds a pause must last before it is reported.
        interval: seconds between two reports.
        clock: monotonic clock (tests).
    """

    def __init__(
        self,
        identifier: str,
        prefix: str,
        *,
        grace: float = PAUSE_GRACE,
        interval: float = LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.identifier = identifier
        self.prefix = prefix
        self._grace = grace
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._state: QueueState | None = None
        self._since = 0.0
        self._last_logged: float | None = None

    def __call__(self, state: QueueState, reason: str | None) -> None:
        now = self._clock()
        with self._lock:
            if state != self._state:
                self._state, self._since = state, now
            if state == QueueState.ACTIVE or now - self._since < self._grace:
                return
            if self._last_logged is not None and now - self._last_logged < self._interval:
                return
            self._last_logged = now
        why = reason or _DEFAULT_REASONS.get(state, "unknown")
        logger.warning(
            "%s for %s is paused (%s, for %.0f s so far): %s",
            self.prefix,
            self.identifier,
            state,
            now - self._since,
            why,
        )
