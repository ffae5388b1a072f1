"""The "cannot reach ...; retrying for N more minutes" WARNING, once per interval.

A request that fails while retry loops go on (connection errors, timeouts, 5xx) is reported to
its transport's :class:`RetryWarning` by whichever transport sent it (threaded or asyncio): a
failure streak longer than :data:`RETRY_WARNING_INTERVAL` logs a WARNING through the ``tinkex``
logger naming the URL, the request, the cause and how long retrying goes on, then at most one
per interval. A blip that a retry fixes at once stays quiet; any answer ends the streak.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from tinkex._exceptions import APIConnectionError, APIStatusError
from tinkex._transport.diagnose import failure_reason
from tinkex._transport.retry_loop import retry_deadline

if TYPE_CHECKING:
    from tinkex._transport.retry import RetryPolicy

__all__ = ["RETRY_WARNING_INTERVAL", "RetryWarning"]

logger = logging.getLogger("tinkex.transport")

#: Seconds between two "cannot reach ...; retrying" warnings of one transport.
RETRY_WARNING_INTERVAL = 10.0


class RetryWarning:
    """The failure streak of one transport, and its throttled warning; thread-safe.

    Args:
        base_url: the server named in the warning.
        clock: monotonic clock measuring the streak and the interval (tests inject one).
    """

    def __init__(self, base_url: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._base_url = base_url
        self._clock = clock
        self._lock = threading.Lock()
        self._warned_at: float | None = None
        self._failing_since: float | None = None  # first failure of the current streak

    def succeeded(self) -> None:
        """An answer came back: the streak is over."""
        self._failing_since = None

    def failed(
        self, exc: BaseException, label: str, policy: RetryPolicy | None, attempts: int
    ) -> None:
        """``label``'s attempt number ``attempts`` ended in ``exc``; warn if the streak is long.

        ``policy`` is the HTTP-layer policy retrying it (None: the caller's loop retries, and
        :func:`retry_deadline` says until when). Nothing is said when nothing retries it.
        """
        if not (
            isinstance(exc, APIConnectionError)
            or (isinstance(exc, APIStatusError) and exc.status_code >= 500)
        ):
            return
        deadline = retry_deadline()
        if deadline is None and (policy is None or not policy.is_retryable(exc)):
            return  # nothing retries it (e.g. a heartbeat): no "retrying" to announce
        if not self._due():
            return
        now = time.monotonic()  # the deadline is on this clock
        if deadline is not None:
            left = f"retrying for {_duration(max(deadline - now, 0.0))} more"
        elif policy is not None and policy.max_retries is not None:
            left = f"retrying up to {max(policy.max_retries - attempts + 1, 0)} more times"
        else:
            left = "retrying"
        reach = "cannot reach" if isinstance(exc, APIConnectionError) else "server error from"
        logger.warning(
            "%s %s (%s): %s; %s", reach, self._base_url, label, failure_reason(exc), left
        )

    def _due(self) -> bool:
        """Whether the streak has lasted an interval and no warning came within one."""
        now = self._clock()
        with self._lock:
            if self._failing_since is None:
                self._failing_since = now
            if now - self._failing_since < RETRY_WARNING_INTERVAL or (
                self._warned_at is not None and now - self._warned_at < RETRY_WARNING_INTERVAL
            ):
                return False
            self._warned_at = now
            return True


def _duration(seconds: float) -> str:
    if seconds >= 90:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds:.0f} s"
