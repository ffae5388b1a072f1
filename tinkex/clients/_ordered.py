"""Sending one model's requests strictly in ``seq_id`` order (docs/protocol.md, "Sequencing").

Each training call reserves its ``seq_id``s when it is made and puts a *send job* on the
model's :class:`OrderedSender`. One daemon thread per model takes the jobs in call order and
performs their submissions (fast: the server answers with a future handle at once); waiting for
results happens elsewhere (on the holder's worker pool), so calls pipeline. When no other job
waits, the thread that sent a call waits for its result itself, and is not the sender
meanwhile (a call made meanwhile starts a new sender thread; otherwise it is the sender again
afterwards): one thread hand-off less per sequential step.

A submission whose outcome is unknown (no answer after its retries, a 5xx, a client-side
error before it was sent) may leave a hole in the server's sequence that nothing can fill, so
the sender is *poisoned*: every later job fails at once with ``RuntimeError`` naming the first
failure, instead of hanging. A clean rejection (:func:`is_clean_rejection`: the server answered
400/422 with a reason) consumed its ``seq_id``, so it fails only its own call (issue 10.4).
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from tinkex._exceptions import APIStatusError

__all__ = ["OrderedSender", "PoisonedError", "is_clean_rejection"]

#: Statuses with which the server rejects a request's content: it consumed the ``seq_id``
#: (docs/protocol.md, "Sequencing"), so later requests do not wait for it.
_REJECTION_STATUSES = frozenset({400, 422})


class PoisonedError(RuntimeError):
    """A previous request of this training client failed to be sent or computed."""


def is_clean_rejection(exc: BaseException) -> bool:
    """Whether the server answered ``exc`` as a definitive rejection of the request itself.

    A 400/422 with a body: the server read the request, refused it and consumed its
    ``seq_id``. An empty-bodied 400 is a proxy artefact (the server may never have seen the
    request), and every other failure leaves the outcome unknown.
    """
    return (
        isinstance(exc, APIStatusError)
        and exc.status_code in _REJECTION_STATUSES
        and bool(exc.body)
    )


_Job = tuple[
    Callable[[], Any],
    Callable[[Any], None],
    Callable[[BaseException], None],
    Callable[[Any], None] | None,
    contextvars.Context,
]
#: What a job queued after close() fails with (and one still queued when the client closes).
_CLOSED = "the client was closed before this request was sent"


class OrderedSender:
    """Runs send jobs one at a time, in the order they were queued."""

    def __init__(self, name: str, stop: threading.Event) -> None:
        self._name = name
        self._stop = stop
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._poison: BaseException | None = None
        self._next_seq = 1

    def reserve(self, count: int) -> int:
        """Reserve ``count`` consecutive seq ids; returns the first."""
        with self._lock:
            first = self._next_seq
            self._next_seq += count
            return first

    def reserve_and_queue(
        self,
        count: int,
        send: Callable[[int], Any],
        on_sent: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
        on_sent_here: Callable[[Any], None] | None = None,
    ) -> int:
        """Reserve ``count`` seq ids and queue ``send(first_seq)`` atomically (call order kept).

        Then ``on_sent(sent)`` or ``on_error(exc)`` is called on the sender's thread; neither
        may block (the next job waits). ``on_sent_here(sent)``, when given, is called instead
        of ``on_sent`` when no other job waits: it may block (e.g. poll for the call's result
        on this thread, without handing it to another), because this thread is no longer the
        sender then: a job queued meanwhile starts a new one.
        """
        with self._lock:
            first = self._next_seq
            self._next_seq += count
            if self._poison is not None:
                on_error(self._poisoned_error())
                return first
            if self._closed:
                on_error(RuntimeError(_CLOSED))
                return first
            # The job runs in the caller's context (the public method its requests report).
            context = contextvars.copy_context()
            self._queue.put((lambda: send(first), on_sent, on_error, on_sent_here, context))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        return first

    def poison(self, exc: BaseException) -> None:
        """Fail every later job with ``exc`` as the cause."""
        with self._lock:
            if self._poison is None:
                self._poison = exc

    def poison_on_failure(self, future: Future[Any]) -> None:
        """A done-callback: poison this sender when ``future`` failed or was cancelled."""
        if future.cancelled():  # asked first: exception() of a cancelled future raises
            self.poison(RuntimeError("a request of this client was cancelled"))
        elif (exc := future.exception()) is not None:
            self.poison(exc)

    @property
    def poisoned(self) -> BaseException | None:
        """The failure that poisoned this sender, if any."""
        return self._poison

    def _poisoned_error(self) -> PoisonedError:
        error = PoisonedError(
            "A previous request failed; this TrainingClient is poisoned and cannot send more "
            f"requests (first failure: {type(self._poison).__name__}: {self._poison}). "
            "Create a new training client, e.g. from your last checkpoint."
        )
        error.__cause__ = self._poison
        return error

    def close(self) -> None:
        """Stop the sender thread after the queued jobs; later jobs fail at once."""
        with self._lock:
            self._closed = True
            self._queue.put(None)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None or self._stop.is_set():
                if job is not None:
                    job[2](RuntimeError(_CLOSED))
                    continue
                return
            if self._run_job(*job) and not self._resume():
                return  # another thread became the sender while this one finished its call
            # Nothing of the job stays referenced while the thread waits for the next one:
            # its callbacks hold the call's future, and so its (maybe large) result.
            del job

    def _run_job(
        self,
        send: Callable[[], Any],
        on_sent: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
        on_sent_here: Callable[[Any], None] | None,
        context: contextvars.Context,
    ) -> bool:
        """Run one job; whether this thread gave the sender's role up to finish it."""
        if self._poison is not None:
            context.run(on_error, self._poisoned_error())
            return False
        try:
            result = context.run(send)
        except BaseException as exc:
            if not is_clean_rejection(exc):
                self.poison(exc)
            context.run(on_error, exc)
            return False
        if on_sent_here is not None and self._hand_over():
            context.run(on_sent_here, result)
            return True
        context.run(on_sent, result)
        return False

    def _resume(self) -> bool:
        """After finishing a call (see :meth:`_hand_over`): be the sender's thread again,
        unless a job queued meanwhile started another one."""
        with self._lock:
            if self._thread is not None:
                return False
            self._thread = threading.current_thread()
            return True

    def _hand_over(self) -> bool:
        """When no job waits, stop being the sender's thread (the next job starts another):
        the job's call can then be finished on this thread without holding up later calls,
        and without a hand-off to another thread (a wake-up on the path of every step)."""
        with self._lock:
            if not self._queue.empty():
                return False
            self._thread = None
            return True
