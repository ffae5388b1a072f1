"""The session futures poller: one long poll per sampling client for all its samples in flight.

Without it every sample in flight long-polls ``retrieve_future`` on its own: a thousand
samples keep a thousand polls (and connections) open. When the server's client config says
``sample_use_retrieve_futures``, a :class:`SessionFuturesPoller` asks
``POST /api/v1/retrieve_futures`` instead, once for the whole sampling session (clone), and
learns which of its requests finished or failed (docs/protocol.md, "Session futures"); each
sample then fetches its result with one ``retrieve_future``, which the server answers at once.

A server without the endpoint (404/405), or a poll that keeps failing, does not fail the
samples: :meth:`SessionFuturesPoller.wait` returns False from then on, and each sample polls
``retrieve_future`` itself, as without the flag. What each failed poll means is
:func:`after_error`, a pure function (its docstring is the table).

The poller lives on the client's :class:`~tinkex._ioloop.IOLoop`: every method runs on that
loop's thread. Its poll task runs only while samples wait or acknowledgements are due, as a
task of the loop, so the loop's ``close()`` cancels it (ending the long poll) and waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from tinkex._exceptions import APIConnectionError, APIStatusError, TinkerError
from tinkex._poll_table import MAX_BAD_REQUESTS, UNREACHABLE_LIMIT
from tinkex._transport.retry import BILLING_MAX_PAUSE, RETRYABLE_STATUSES
from tinkex.types._converter import from_wire
from tinkex.types._session import FuturesRetrieveResponse

if TYPE_CHECKING:
    from tinkex._ioloop import IOLoop
    from tinkex._transport.aio import AsyncTransport

__all__ = ["FallBack", "PollErrors", "Retry", "SessionFuturesPoller", "after_error"]

logger = logging.getLogger("tinkex")

RETRIEVE_FUTURES_PATH = "/api/v1/retrieve_futures"
#: Read timeout of a long poll (the server holds it for less) and of an acknowledgement-only
#: poll (``timeout: 0``, answered at once).
POLL_TIMEOUT = 45.0
ACK_TIMEOUT = 5.0
#: The acknowledgement sent when the poll task is cancelled (the client closes) is one short try.
FINAL_ACK_TIMEOUT = 1.0
#: Waits after a failed poll: a billing pause, anything else that may pass.
BILLING_WAIT = 5.0
RETRY_WAIT = 1.0
#: A long poll answered empty sooner than this is followed by a wait of this long (a server
#: that does not hold polls is not polled in a busy loop).
MIN_EMPTY_POLL = 0.05


# ---- what a failed poll means -----------------------------------------------------------------


@attrs.frozen
class PollErrors:
    """The failed polls in a row: 400 answers, since when no HTTP answer came, since when the
    server answers 402 (billing)."""

    bad_requests: int = 0
    unreachable_since: float | None = None
    paused_since: float | None = None


@attrs.frozen
class Retry:
    """Poll again after ``delay`` seconds, with ``errors``."""

    errors: PollErrors
    delay: float


@attrs.frozen
class FallBack:
    """Stop polling the session: every sample polls its own request (``reason`` is logged)."""

    reason: str


def after_error(
    exc: APIStatusError | APIConnectionError,
    errors: PollErrors,
    *,
    now: float,
    billing_max_pause: float = BILLING_MAX_PAUSE,
) -> Retry | FallBack:
    """What to do after a ``retrieve_futures`` poll failed with ``exc``. Pure.

    =========================================  ==============================================
    failure                                    action
    =========================================  ==============================================
    404 / 405                                  fall back: the server does not serve it
    402                                        wait 5 s, for up to ``billing_max_pause`` s
                                               of 402s in a row, then fall back
    408 / 409 / 429 / 5xx                      wait 1 s, poll again
    connection error / timeout                 wait 1 s, poll again; after
                                               ``UNREACHABLE_LIMIT`` s without any HTTP
                                               answer, fall back
    400                                        wait 1 s, at most 3 times in a row (a proxy's),
                                               then fall back
    other 4xx                                  fall back
    =========================================  ==============================================
    """
    if isinstance(exc, APIConnectionError):
        since = now if errors.unreachable_since is None else errors.unreachable_since
        if now - since >= UNREACHABLE_LIMIT:
            return FallBack(f"no answer for {now - since:.0f} s (last error: {exc})")
        return Retry(attrs.evolve(errors, unreachable_since=since), RETRY_WAIT)
    status = exc.status_code
    answered = attrs.evolve(errors, unreachable_since=None)
    if status in (404, 405):
        return FallBack(f"the server does not serve {RETRIEVE_FUTURES_PATH} (HTTP {status})")
    if status == 402:
        since = now if errors.paused_since is None else errors.paused_since
        if now - since >= billing_max_pause:
            return FallBack(f"billing paused polling for {now - since:.0f} s (HTTP 402)")
        return Retry(attrs.evolve(answered, paused_since=since), BILLING_WAIT)
    answered = attrs.evolve(answered, paused_since=None)
    if status in RETRYABLE_STATUSES or 500 <= status < 600:
        return Retry(attrs.evolve(answered, bad_requests=0), RETRY_WAIT)
    if status == 400 and errors.bad_requests < MAX_BAD_REQUESTS:
        return Retry(attrs.evolve(answered, bad_requests=errors.bad_requests + 1), RETRY_WAIT)
    return FallBack(f"HTTP {status}: {exc.message}")


# ---- the poller -------------------------------------------------------------------------------


class SessionFuturesPoller:
    """Collects the completions of one sampling session (clone) for the samples waiting on it.

    Args:
        io: the client's I/O loop (the poll task runs on it).
        aio: the transport's requests over that loop.
        sampling_session_id: the session polled.
        clone_id: the client's clone id (``seq_id // 1_000_000_000``); a clone sees only its
            own requests.
        stop: the client's stop event: once set, nothing more is polled.
        billing_max_pause: how long 402 answers pause polling before it falls back.
        clock: monotonic clock (tests).
    """

    def __init__(
        self,
        io: IOLoop,
        aio: AsyncTransport,
        *,
        sampling_session_id: str,
        clone_id: int,
        stop: threading.Event,
        billing_max_pause: float = BILLING_MAX_PAUSE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._io = io
        self._aio = aio
        self._target = {
            "type": "sampling_session",
            "sampling_session_id": sampling_session_id,
            "cloned_sampler_id": clone_id,
        }
        self._stop = stop
        self._billing_max_pause = billing_max_pause
        self._clock = clock
        #: the cursor of the last answer, and the last one the server got as prev_cursor
        self._cursor = 0
        self._acked = 0
        self._waiters: dict[str, asyncio.Future[bool]] = {}
        #: reported before anyone waited for them (the poll answered before the sample asked)
        self._early: set[str] = set()
        #: their samples stopped waiting (cancelled) before they were reported
        self._abandoned: set[str] = set()
        #: results the samples have, to report on the next poll
        self._retrieved: set[str] = set()
        self._running = False
        #: why the session is not polled any more (None: it is)
        self.fallback: str | None = None
        #: polls sent (for tests and benchmarks)
        self.polls = 0

    def __repr__(self) -> str:
        return (
            f"SessionFuturesPoller({self._target['sampling_session_id']!r}, "
            f"clone={self._target['cloned_sampler_id']}, waiting={len(self._waiters)}, "
            f"cursor={self._cursor}, fallback={self.fallback!r})"
        )

    @property
    def waiting(self) -> int:
        """Samples waiting for their completion now."""
        return len(self._waiters)

    async def wait(self, request_id: str) -> bool:
        """Wait until the session poll reports ``request_id`` finished or failed.

        Returns:
            True: it did; fetch the result with ``retrieve_future`` (answered at once).
            False: the session is not polled (see :attr:`fallback`); poll the request itself.
        """
        if request_id in self._early:
            self._early.discard(request_id)
            return True
        if self.fallback is not None or self._stop.is_set():
            return False
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiters[request_id] = waiter
        self._start()
        try:
            return await waiter
        except asyncio.CancelledError:
            self._abandoned.add(request_id)
            raise
        finally:
            self._waiters.pop(request_id, None)

    def retrieved(self, request_id: str) -> None:
        """The sample of ``request_id`` has its outcome: tell the server on the next poll."""
        if self.fallback is None and not self._stop.is_set():
            self._retrieved.add(request_id)
            self._start()

    # ---- the poll task ---------------------------------------------------------------------

    def _due(self) -> bool:
        """Whether a poll is due: samples wait, or acknowledgements are not sent yet."""
        return bool(self._waiters or self._retrieved or self._cursor > self._acked)

    def _start(self) -> None:
        if self._running:
            return
        self._running = True
        try:
            self._io.spawn(self._run)
        except RuntimeError:  # the loop is closing: the samples are being cancelled
            self._running = False

    async def _run(self) -> None:
        errors = PollErrors()
        try:
            while self._due() and self.fallback is None and not self._stop.is_set():
                try:
                    await self._poll(ack_only=not self._waiters)
                except (APIStatusError, APIConnectionError) as exc:
                    action = after_error(
                        exc, errors, now=self._clock(), billing_max_pause=self._billing_max_pause
                    )
                    if isinstance(action, FallBack):
                        self._fall_back(action.reason)
                        return
                    errors = action.errors
                    await asyncio.sleep(action.delay)
                else:
                    errors = PollErrors()
        except asyncio.CancelledError:
            await self._final_ack()
            raise
        except Exception as exc:  # an answer it cannot use: the samples poll themselves
            self._fall_back(f"{type(exc).__name__}: {exc}")
        finally:
            self._running = False

    async def _poll(self, *, ack_only: bool, timeout: float | None = None) -> None:
        """One poll: report the retrieved results, then hand out the completions."""
        retrieved = sorted(self._retrieved)
        body: dict[str, Any] = {
            "target": self._target,
            "prev_cursor": self._cursor,
            "retrieved_request_ids": retrieved,
        }
        if ack_only:
            body["timeout"] = 0
        self.polls += 1
        sent = self._clock()
        answer = await self._aio.request(
            "POST",
            RETRIEVE_FUTURES_PATH,
            json=body,
            timeout=timeout or (ACK_TIMEOUT if ack_only else POLL_TIMEOUT),
        )
        response = from_wire(
            answer.json(), FuturesRetrieveResponse, request=f"POST {RETRIEVE_FUTURES_PATH}"
        )
        self._retrieved.difference_update(retrieved)
        self._acked = max(self._acked, body["prev_cursor"])
        self._cursor = response.cursor
        for completion in response.completions:
            self._report(completion.request_id)
        if not ack_only and not response.completions and self._clock() - sent < MIN_EMPTY_POLL:
            await asyncio.sleep(MIN_EMPTY_POLL)

    def _report(self, request_id: str) -> None:
        waiter = self._waiters.pop(request_id, None)
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(True)
        elif request_id in self._abandoned:
            self._abandoned.discard(request_id)
            self._retrieved.add(request_id)  # nobody will fetch it: the server may free it
        else:
            self._early.add(request_id)

    def _fall_back(self, reason: str) -> None:
        """Stop polling the session; the waiting samples (and later ones) poll themselves."""
        self.fallback = reason
        logger.warning(
            "sampling session %s: session futures poll stopped (%s); each sample polls "
            "retrieve_future itself",
            self._target["sampling_session_id"],
            reason,
        )
        waiters, self._waiters = self._waiters, {}
        for waiter in waiters.values():
            if not waiter.done():
                waiter.set_result(False)
        self._early.clear()
        self._retrieved.clear()

    async def _final_ack(self) -> None:
        """On cancellation (the client closes): one short poll reporting what is unreported."""
        if not (self._retrieved or self._cursor > self._acked) or self.fallback is not None:
            return
        try:
            await self._poll(ack_only=True, timeout=FINAL_ACK_TIMEOUT)
        except (TinkerError, OSError):
            pass  # best effort: the server frees the results later anyway
