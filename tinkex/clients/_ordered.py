"""Sending one model's requests strictly in ``seq_id`` order (docs/protocol.md, "Sequencing").

Each training call reserves its ``seq_id``s when it is made and puts a *send job* on the
model's :class:`OrderedSender`. One daemon thread per model takes the jobs in call order and
performs their submissions (fast: the server answers with a future handle at once); waiting for
results happens elsewhere (on the holder's worker pool), so calls pipeline.

A submission that fails after its retries leaves a hole in the server's sequence that nothing
can fill, so the sender is *poisoned*: every later job fails at once with ``RuntimeError``
naming the first failure, instead of hanging.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["OrderedSender", "PoisonedError"]


class PoisonedError(RuntimeError):
    """A previous request of this training client failed to be sent or computed."""


_Job = tuple[Callable[[], Any], Callable[[Any], None], Callable[[BaseException], None]]


class OrderedSender:
    """Runs send jobs one at a time, in the order they were queued."""

    def __init__(self, name: str, stop: threading.Event) -> None:
        self._name = name
        self._stop = stop
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
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
    ) -> int:
        """Reserve ``count`` seq ids and queue ``send(first_seq)`` atomically (call order kept)."""
        with self._lock:
            first = self._next_seq
            self._next_seq += count
            if self._poison is not None:
                on_error(self._poisoned_error())
                return first
            self._queue.put((lambda: send(first), on_sent, on_error))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        return first

    def poison(self, exc: BaseException) -> None:
        """Fail every later job with ``exc`` as the cause."""
        with self._lock:
            if self._poison is None:
                self._poison = exc

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
        """Stop the sender thread after the queued jobs."""
        self._queue.put(None)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None or self._stop.is_set():
                if job is not None:
                    job[2](RuntimeError("the client was closed before this request was sent"))
                    continue
                return
            send, on_sent, on_error = job
            if self._poison is not None:
                on_error(self._poisoned_error())
                continue
            try:
                result = send()
            except BaseException as exc:
                self.poison(exc)
                on_error(exc)
            else:
                on_sent(result)
