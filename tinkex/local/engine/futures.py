"""Server-side futures: one record per submitted request, until its result is fetched or expires.

Used from the event-loop thread only. Records' metadata (never payloads) is journaled to the
SQLite index in batches, so a restarted server can tell "this request existed" from "unknown".

With a memory budget (:mod:`.memory`), a record holds its job's admitted memory until it
finishes, then its result's bytes until the result is released: ``delivered_ttl`` seconds after
``retrieve_future`` delivered it (a client that lost that answer polls again at once), earlier
when the budget needs the room, or with the record after ``ttl_seconds``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tinkex.local.engine.memory import Holding, MemoryBudget
from tinkex.local.storage import FutureRow

__all__ = ["FutureRecord", "FutureTable"]

logger = logging.getLogger("tinkex.local")


@dataclass(slots=True)
class FutureRecord:
    """One server-side future (a submitted request and, eventually, its outcome).

    Records are kept up to an hour after they finish (hundreds of thousands on a busy server),
    so a finished one keeps only what a late poll is answered from: slots, no event, no
    memory holdings.
    """

    request_id: str
    kind: str
    created_at: float
    result: Any = None
    error: tuple[str, str] | None = None
    completed_at: float | None = None
    #: set by cancel_future or when the request's session ends: its job stops (or never runs)
    cancelled: bool = False
    cancel_reason: str = "request was cancelled"
    #: the model or sampler the request belongs to
    owner_id: str | None = None
    #: the memory admitted for the request's job (released when it finishes)
    job_memory: Holding | None = None
    #: the memory its result holds while kept
    result_memory: Holding | None = None
    #: when retrieve_future first delivered the outcome
    delivered_at: float | None = None
    #: the result was delivered and released (a late poll is told so)
    released: bool = False
    #: the (sampling session, clone) whose ``retrieve_futures`` feed reports this request
    feed: tuple[str, int] | None = None
    #: set when it finishes; made only when a poll waits for a pending record
    _done: asyncio.Event | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def finished(self) -> bool:
        """True once completed or failed."""
        return self.completed_at is not None

    async def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the outcome; True once finished."""
        if self.completed_at is None:
            if self._done is None:
                self._done = asyncio.Event()
            try:
                await asyncio.wait_for(self._done.wait(), timeout)
            except TimeoutError:
                return False
        return True

    def wake(self) -> None:
        """Wake the polls waiting for the outcome (called once it is set)."""
        done, self._done = self._done, None
        if done is not None:
            done.set()

    def row(self) -> FutureRow:
        """The persisted metadata of this record (state only, no payload)."""
        error: str | None = None
        category: str | None = None
        if self.error is not None:
            state, (error, category) = "failed", self.error
        else:
            state = "complete" if self.finished else "pending"
        return FutureRow(
            clone=None if self.feed is None else self.feed[1],
            request_id=self.request_id,
            kind=self.kind,
            owner_id=self.owner_id,
            state=state,
            created_at=self.created_at,
            updated_at=self.completed_at or self.created_at,
            error=error,
            category=category,
        )


class FutureTable:
    """Request id -> FutureRecord, with expiry of old completed records. Loop thread only.

    Finished records are also kept in the order they finished, so expiry pops the stale ones
    from the front and never walks the records it keeps (up to an hour's worth); pending ones
    are kept apart, for cancellation and counting. ``clock`` is the wall clock (tests).

    With a ``journal`` (e.g. :meth:`Store.save_futures`), the metadata of new and finished
    records is written in batches: the first change schedules one flush ``flush_delay`` seconds
    later on ``loop``, which writes every record changed since, in one call.
    """

    def __init__(
        self,
        ttl_seconds: float = 3600.0,
        max_records: int = 200_000,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        journal: Callable[[list[FutureRow]], None] | None = None,
        flush_delay: float = 0.05,
        budget: MemoryBudget | None = None,
        sizer: Callable[[Any], int] | None = None,
        delivered_ttl: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._records: dict[str, FutureRecord] = {}
        self._pending: dict[str, FutureRecord] = {}
        #: finished records, in the order they finished (expiry pops from the front)
        self._finish_order: deque[FutureRecord] = deque()
        self._clock = clock
        self._counter = itertools.count(1)
        self._prefix = uuid.uuid4().hex[:6]
        self._ttl = ttl_seconds
        self._max = max_records
        self._loop = loop
        self._journal = journal
        self._flush_delay = flush_delay
        self._dirty: dict[str, FutureRecord] = {}
        self._flush_handle: asyncio.TimerHandle | None = None
        self._finished: dict[tuple[str, str | None, str], int] = {}
        self._budget = budget
        self._sizer = sizer
        self._delivered_ttl = delivered_ttl
        #: delivered records whose result is still kept, oldest delivery first
        self._delivered: OrderedDict[str, FutureRecord] = OrderedDict()
        #: called with each record as it finishes (completed or failed)
        self.on_finish: Callable[[FutureRecord], None] | None = None

    def new(
        self, kind: str, owner_id: str | None = None, job_memory: Holding | None = None
    ) -> FutureRecord:
        """A new pending record with a fresh ``req-...`` id (holding ``job_memory``)."""
        request_id = f"req-{self._prefix}-{next(self._counter)}"
        record = FutureRecord(
            request_id, kind, self._clock(), owner_id=owner_id, job_memory=job_memory
        )
        self._records[request_id] = record
        self._pending[request_id] = record
        self._mark(record)
        return record

    def owns(self, request_id: str) -> bool:
        """True if ``request_id`` was issued by this table (this server run)."""
        return request_id.startswith(f"req-{self._prefix}-")

    def get(self, request_id: str) -> FutureRecord | None:
        """The record, or None when unknown or expired."""
        return self._records.get(request_id)

    def complete(self, record: FutureRecord, result: Any) -> None:
        """Mark ``record`` completed with ``result``."""
        if record.finished:
            return
        record.result = result
        self._finish(record)
        if self._budget is not None and self._sizer is not None:
            record.result_memory = self._budget.hold("results", self._sizer(result))
        self._count_finished(record, "complete")
        self._mark(record)

    def fail(self, record: FutureRecord, message: str, category: str) -> None:
        """Mark ``record`` failed (category ``user`` or ``server``)."""
        if record.finished:
            return
        record.error = (message, category)
        self._finish(record)
        self._count_finished(record, "failed")
        self._mark(record)

    def _finish(self, record: FutureRecord) -> None:
        record.completed_at = self._clock()
        record.wake()
        del self._pending[record.request_id]
        self._finish_order.append(record)
        job_memory, record.job_memory = record.job_memory, None
        if job_memory is not None:
            job_memory.release()
        if self.on_finish is not None:
            self.on_finish(record)

    def delivered(self, record: FutureRecord) -> None:
        """``retrieve_future`` answered ``record``'s outcome: its result may go soon."""
        if record.delivered_at is not None or not record.finished:
            return
        record.delivered_at = self._clock()
        if record.result_memory is not None:
            self._delivered[record.request_id] = record

    def release_delivered(self, nbytes: int | None = None, before: float | None = None) -> int:
        """Release delivered results, oldest delivery first: until ``nbytes`` are freed, or
        those delivered before time ``before``; returns the bytes freed."""
        freed = 0
        while self._delivered and (nbytes is None or freed < nbytes):
            request_id, record = next(iter(self._delivered.items()))
            if before is not None and (record.delivered_at or 0.0) >= before:
                break
            del self._delivered[request_id]
            freed += self._release(record)
        return freed

    def release(self, record: FutureRecord) -> int:
        """The client has its outcome (``retrieve_futures`` was told so): drop a delivered
        result now; returns the bytes freed (0 when it was never delivered)."""
        if record.delivered_at is None:
            return 0
        return self._release(record)

    def _release(self, record: FutureRecord) -> int:
        """Drop ``record``'s result; returns the bytes it held."""
        self._delivered.pop(record.request_id, None)
        holding, record.result_memory = record.result_memory, None
        if holding is None:
            return 0
        holding.release()
        record.result = None
        record.released = True
        return holding.nbytes

    def _count_finished(self, record: FutureRecord, outcome: str) -> None:
        key = (record.kind, record.owner_id, outcome)
        self._finished[key] = self._finished.get(key, 0) + 1

    def finished_counts(self) -> dict[tuple[str, str | None, str], int]:
        """How many records finished, by ``(kind, owner_id, "complete" | "failed")``.

        Never decreases (eviction does not forget). Each record is one accepted request and
        runs at most once, so a ``complete`` count is a count of executions; a resend the
        server recognised gets the original record back and is not counted again.
        """
        return dict(self._finished)

    def _mark(self, record: FutureRecord) -> None:
        if self._journal is None:
            return
        self._dirty[record.request_id] = record
        if self._flush_handle is None and self._loop is not None:
            self._flush_handle = self._loop.call_later(self._flush_delay, self.flush)

    def flush(self) -> None:
        """Write the records changed since the last flush to the journal."""
        self._flush_handle = None
        if not self._dirty or self._journal is None:
            return
        rows = [record.row() for record in self._dirty.values()]
        self._dirty.clear()
        try:
            self._journal(rows)
        except Exception:  # metadata only: a failed write must not break request handling
            logger.exception("local server could not persist %d future records", len(rows))

    def cancel_pending(self, owner_ids: set[str], reason: str) -> int:
        """Mark the pending requests of ``owner_ids`` cancelled (their jobs stop); returns how
        many."""
        count = 0
        for record in self._pending.values():
            if not record.cancelled and record.owner_id in owner_ids:
                record.cancelled = True
                record.cancel_reason = reason
                count += 1
        return count

    def pending_count(self) -> int:
        """How many records are not finished."""
        return len(self._pending)

    def evict(self, now: float) -> None:
        """Release results delivered more than ``delivered_ttl`` ago; drop finished records
        older than the TTL, and the earliest finished beyond the size cap (pending records
        are never dropped)."""
        self.release_delivered(before=now - self._delivered_ttl)
        order, stale_before = self._finish_order, now - self._ttl
        while order and (
            len(self._records) > self._max or (order[0].completed_at or now) < stale_before
        ):
            record = order.popleft()
            del self._records[record.request_id]
            self._release(record)
