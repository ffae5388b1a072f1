"""One asyncio event loop on one daemon thread: where in-flight samples wait without a thread.

A sample spends almost all of its life waiting for the server (the ``asample`` round trip, then
the ``retrieve_future`` long-poll). On a worker thread each waiting sample holds that thread;
on an :class:`IOLoop` thousands of them are coroutines multiplexed by one selector, and the
user still gets a ``concurrent.futures.Future`` (an :class:`~tinkex._futures.APIFuture`).

The owner (``ClientHolder``) creates the loop on first use and closes it in ``close()``:
every coroutine still running is cancelled (its future ends cancelled), the loop's cleanup
callbacks run on the loop (connections are closed), and the thread is joined.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from tinkex._futures import APIFuture

__all__ = ["IOLoop"]

logger = logging.getLogger("tinkex")
T = TypeVar("T")

#: How long ``close()`` waits for the loop thread to finish its cleanup.
_JOIN_TIMEOUT = 5.0


class IOLoop:
    """An asyncio loop running on its own daemon thread, owned by whoever created it.

    Args:
        name: the thread's name (``"tinkex-io"``).

    ``spawn(fn, *args)`` runs the coroutine ``fn(*args)`` on the loop and returns an
    :class:`APIFuture` of its result; cancelling the future cancels the coroutine.
    ``close()`` cancels whatever still runs and joins the thread. Not a context manager on
    purpose: its owner's ``close()`` is the one place it stops.
    """

    def __init__(self, name: str = "tinkex-io") -> None:
        # In an empty context: the loop keeps a copy of the creator's with its own reader,
        # and the first sample's context holds its client (the loop would keep it alive).
        self._loop = contextvars.Context().run(asyncio.new_event_loop)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._cleanups: list[Callable[[], Awaitable[None]]] = []
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop (use it only from coroutines running on it)."""
        return self._loop

    @property
    def thread(self) -> threading.Thread:
        """The loop's thread."""
        return self._thread

    def on_close(self, cleanup: Callable[[], Awaitable[None]]) -> None:
        """Await ``cleanup()`` on the loop when it closes, after the tasks were cancelled."""
        with self._lock:
            self._cleanups.append(cleanup)

    def spawn(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> APIFuture[T]:
        """Run ``fn(*args)`` on the loop; its future (``CancelledError`` in it cancels it).

        Raises:
            RuntimeError: the loop was closed.
        """
        future: APIFuture[T] = APIFuture()
        with self._lock:
            if self._closed:
                raise RuntimeError("this client was closed; create a new ServiceClient")
            self._loop.call_soon_threadsafe(self._start, future, fn, args)
        return future

    def close(self) -> None:
        """Cancel every running coroutine, run the cleanups, stop the loop, join the thread.

        Idempotent; safe to call from any thread but the loop's own.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if threading.current_thread() is self._thread:
            raise RuntimeError("IOLoop.close() called from its own thread")
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(_JOIN_TIMEOUT)
        except Exception:  # the loop is gone or stuck: the join below is bounded anyway
            logger.exception("tinkex I/O loop did not shut down cleanly")
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_JOIN_TIMEOUT)
        if not self._thread.is_alive():
            self._loop.close()

    # ---- on the loop thread ----------------------------------------------------------------

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _start(
        self,
        future: APIFuture[T],
        fn: Callable[..., Coroutine[Any, Any, T]],
        args: tuple[Any, ...],
    ) -> None:
        if future.done():  # cancelled before it started
            return
        task = self._loop.create_task(fn(*args))
        self._tasks.add(task)

        def settle(done: asyncio.Task[T]) -> None:
            self._tasks.discard(done)
            future._settle_like(done)

        task.add_done_callback(settle)
        future.add_done_callback(
            lambda f: self._loop.call_soon_threadsafe(task.cancel) if f.cancelled() else None
        )

    async def _shutdown(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for cleanup in self._cleanups:
            try:
                await cleanup()
            except Exception:
                logger.exception("tinkex I/O loop cleanup failed")
