"""Futures: :class:`APIFuture`, :func:`mirror` and the queue states of pending requests.

:class:`APIFuture` *is* a :class:`concurrent.futures.Future`, so ``concurrent.futures.wait``,
``as_completed`` and ``asyncio.wrap_future`` work on it, and it is awaitable. Work runs on an
executor thread (:meth:`APIFuture.run`); cancelling a future that has not finished marks it
cancelled at once and tells the code running for it (:func:`current_future`) to stop.

The loop that turns a server-side request id into a result is ``tinkex._poller.poll_future``.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import CancelledError, Executor, Future, InvalidStateError
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from tinkex._future_condition import FutureCondition

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "APIFuture",
    "AwaitableConcurrentFuture",
    "QueueState",
    "QueueStateCallback",
    "current_future",
    "mirror",
]

T = TypeVar("T")
U = TypeVar("U")

_PENDING = "PENDING"
_CANCELLED = "CANCELLED"

_local = threading.local()


def current_future() -> APIFuture[Any] | None:
    """The :class:`APIFuture` whose work runs on this thread (inside :meth:`APIFuture.run`)."""
    return getattr(_local, "future", None)


class APIFuture(Future[T], Generic[T]):
    """A future for a Tinker API result: a ``concurrent.futures.Future`` that is also awaitable.

    ``result(timeout)`` blocks (``TimeoutError`` after ``timeout`` seconds, the operation keeps
    running); ``await fut`` / ``await fut.result_async(timeout)`` wait without blocking the
    event loop (a timeout or cancellation there cancels the operation). ``cancel()`` works
    until the future has a result, also while its work is running: the work sees
    :func:`current_future` cancelled and stops at its next step.

    Example::

        fut = training_client.forward_backward(data, "cross_entropy")
        out = fut.result(timeout=600)          # or: out = await fut
    """

    #: ``concurrent.futures.Future``'s own list of done callbacks (not in its type stubs).
    _done_callbacks: list[Callable[[Future[Any]], object]]

    def __init__(self) -> None:
        super().__init__()
        # ~1.4 KB less per future than Future's threading.Condition (thousands of samples
        # in flight hold one future each); same semantics.
        self._condition = FutureCondition()  # type: ignore[assignment]
        self._cancel_lock = threading.RLock()

    # ---- construction ----------------------------------------------------------------------

    @classmethod
    def run(
        cls,
        executor: Executor,
        fn: Callable[..., T],
        *args: Any,
        into: APIFuture[T] | None = None,
    ) -> APIFuture[T]:
        """Run ``fn(*args)`` on ``executor``; the returned future mirrors its outcome.

        Cancelling the future before ``fn`` starts means ``fn`` never runs; an executor that
        drops the queued work (``shutdown(cancel_futures=True)``) cancels the future. If ``fn``
        raises ``concurrent.futures.CancelledError`` the future ends cancelled. ``into``: a
        pending future made earlier (e.g. handed to the caller before the work could be
        queued) that this work settles and returns, instead of a new one.

        Raises:
            RuntimeError: the executor is shut down.
        """
        future: APIFuture[T] = cls() if into is None else into
        inner = executor.submit(future._compute, fn, *args)
        inner.add_done_callback(lambda f: future.cancel() if f.cancelled() else None)
        future.add_done_callback(lambda f: inner.cancel() if f.cancelled() else None)
        return future

    @classmethod
    def completed(cls, value: T) -> APIFuture[T]:
        """A future that already holds ``value``."""
        future: APIFuture[T] = cls()
        future.set_result(value)
        return future

    @classmethod
    def failed(cls, exc: BaseException) -> APIFuture[T]:
        """A future that already holds the exception ``exc``."""
        future: APIFuture[T] = cls()
        future.set_exception(exc)
        return future

    @classmethod
    def combine(
        cls, futures: Sequence[Future[U]], transform: Callable[[list[U]], T]
    ) -> APIFuture[T]:
        """A future of ``transform([f.result() for f in futures])``, without a thread.

        Fails with the first failing input (in input order of completion); cancelling the
        combined future cancels the inputs; a cancelled input cancels the combined future.
        ``transform`` runs on the thread that completes the last input.
        """
        combined: APIFuture[T] = cls()
        inputs = list(futures)
        remaining = [len(inputs)]
        lock = threading.Lock()

        def combined_value() -> T:
            values = [f.result() for f in inputs]
            inputs.clear()  # a plain input future's callback would keep this list alive
            return transform(values)

        def finish() -> None:
            combined._settle_by(combined_value)

        def on_input_done(f: Future[U]) -> None:
            if f.cancelled() or f.exception() is not None:
                combined._settle_like(f)
                return
            with lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                finish()

        def on_combined_done(f: Future[T]) -> None:
            if f.cancelled():
                for item in inputs:
                    item.cancel()

        combined.add_done_callback(on_combined_done)
        if not inputs:
            finish()
        for item in inputs:
            item.add_done_callback(on_input_done)
        return combined

    def map(self, fn: Callable[[T], U]) -> APIFuture[U]:
        """A future of ``fn(self.result())``; ``fn`` runs on the thread completing ``self``."""
        return APIFuture.combine([self], lambda values: fn(values[0]))

    # ---- settling ----------------------------------------------------------------------------

    def _invoke_callbacks(self) -> None:
        super()._invoke_callbacks()  # type: ignore[misc]  # (not in the stubs either)
        # Done: the callbacks have run, and any added later runs at once, so the list can go.
        # Kept, it would hold reference cycles (this future <-> its executor future, mirror's
        # and combine's pairs) and with them the result until the cyclic garbage collector
        # ran: for forward/backward outputs, megabytes and a full collection per step.
        self._done_callbacks.clear()

    # The one place a future is settled from an outcome: a call's (:meth:`_settle_by`) or a
    # done future's (:meth:`_settle_like`). A ``CancelledError`` outcome cancels the future;
    # a future already done (cancelled while the work ran) stays as it is.

    def _compute(self, fn: Callable[..., T], *args: Any) -> None:
        """Settle with ``fn(*args)``, run on this thread as the future's work
        (:func:`current_future` is this future meanwhile); nothing when already done."""
        if self.done():
            return
        previous = getattr(_local, "future", None)
        _local.future = self
        try:
            self._settle_by(fn, *args)
        finally:
            _local.future = previous

    def _settle_by(self, fn: Callable[..., T], *args: Any) -> None:
        """Settle with what ``fn(*args)`` returns or raises."""
        try:
            value = fn(*args)
        except CancelledError:
            self.cancel()
        except BaseException as exc:
            self._settle_exception(exc)
        else:
            self._settle_result(value)

    def _settle_like(self, source: Future[Any] | asyncio.Future[Any]) -> None:
        """Settle as the done ``source`` (a ``concurrent.futures`` or asyncio future/task)
        ended; its exception is passed on as it is, not re-raised on the way."""
        if source.cancelled():
            self.cancel()
            return
        exc = source.exception()
        if isinstance(exc, CancelledError):
            self.cancel()
        elif exc is not None:
            self._settle_exception(exc)
        else:
            self._settle_result(source.result())

    def _settle_result(self, value: T) -> None:
        try:
            self.set_result(value)
        except InvalidStateError:
            pass  # cancelled while the work ran: the cancellation wins

    def _settle_exception(self, exc: BaseException) -> None:
        try:
            self.set_exception(exc)
        except InvalidStateError:
            pass

    def cancel(self) -> bool:
        """Cancel unless a result is already set; returns whether the future is cancelled.

        Unlike a plain executor future this also works while the work is running (the work
        is asked to stop through :func:`current_future`).
        """
        with self._cancel_lock:
            if not super().cancel():
                return False
            if self._state == _CANCELLED:
                # Wake concurrent.futures.wait()/as_completed() waiters, which are only told
                # about cancellations through this call.
                self.set_running_or_notify_cancel()
            return True

    # ---- waiting -----------------------------------------------------------------------------

    def result(self, timeout: float | None = None) -> T:
        """Block until the result is ready and return it (or raise the operation's error).

        Raises:
            TimeoutError: not done after ``timeout`` seconds (the operation keeps running).
            concurrent.futures.CancelledError: the future was cancelled.
        """
        try:
            return super().result(timeout)
        except TimeoutError:
            if self.done():
                raise
            raise TimeoutError(f"API result not ready after {timeout} s") from None

    async def result_async(self, timeout: float | None = None) -> T:
        """Await the result; on timeout or cancellation the operation is cancelled.

        Raises:
            TimeoutError: not done after ``timeout`` seconds.
        """
        import asyncio  # only async callers pay for importing asyncio

        wrapped = asyncio.wrap_future(self)
        try:
            return await asyncio.wait_for(wrapped, timeout)
        except (asyncio.CancelledError, TimeoutError):
            self.cancel()
            raise

    def future(self) -> Future[T]:
        """The underlying ``concurrent.futures.Future`` — this object itself."""
        return self

    async def coroutine(self) -> T:
        """A coroutine of the result, for ``asyncio.create_task(fut.coroutine())``."""
        return await self.result_async()

    def __await__(self) -> Generator[Any, None, T]:
        return self.result_async().__await__()


def mirror(source: Future[Any], target: APIFuture[Any]) -> None:
    """Settle ``target`` like ``source``; cancelling ``target`` cancels ``source``."""

    source.add_done_callback(target._settle_like)
    target.add_done_callback(lambda t: source.cancel() if t.cancelled() else None)


class AwaitableConcurrentFuture(APIFuture[T]):
    """An :class:`APIFuture` settled like ``future``, any ``concurrent.futures.Future``.

    The name and constructor of ``tinker.lib.public_interfaces.AwaitableConcurrentFuture``:
    it makes a future from any executor awaitable. Cancelling it cancels ``future``.

    Example::

        fut = AwaitableConcurrentFuture(executor.submit(work))
        value = await fut
    """

    def __init__(self, future: Future[T]) -> None:
        super().__init__()
        mirror(future, self)


# ---------------------------------------------------------------------------------------------
# queue states of pending requests (reported by the retrieve_future poller, tinkex._poller)
# ---------------------------------------------------------------------------------------------


class QueueState(enum.StrEnum):
    """Server-side queue state of a pending request (``try_again`` answers)."""

    ACTIVE = "active"
    PAUSED_RATE_LIMIT = "paused_rate_limit"
    PAUSED_CAPACITY = "paused_capacity"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, value: object) -> QueueState:
        """The state named by ``value`` (``UNKNOWN`` for anything unrecognised)."""
        try:
            return cls(str(value))
        except ValueError:
            return cls.UNKNOWN


#: ``on_queue_state(state, reason)`` — called from the poller thread.
QueueStateCallback = Callable[[QueueState, "str | None"], None]
