"""FutureTable's expiry: finished records go after the TTL or beyond the size cap, pending ones
never, and a maintenance tick costs what it evicts, not what the table holds."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from tinkex.local.engine import FutureTable, futures
from tinkex.local.engine.memory import MemoryBudget


class Clock:
    """A settable wall clock."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    asyncio.set_event_loop(None)
    loop.close()


def _finished(table: FutureTable, count: int, result: Any = "payload") -> list[str]:
    ids = []
    for _ in range(count):
        record = table.new("Sample", "sampler-1")
        table.complete(record, result)
        ids.append(record.request_id)
    return ids


def test_records_finished_longer_ago_than_the_ttl_are_dropped(
    loop: asyncio.AbstractEventLoop,
) -> None:
    clock = Clock()
    table = FutureTable(ttl_seconds=10, clock=clock)
    pending = table.new("Sample", "sampler-1")
    old = _finished(table, 3)
    clock.now += 5
    failed = table.new("Sample", "sampler-1")
    table.fail(failed, "boom", "user")
    young = _finished(table, 2)
    clock.now += 6  # the first three finished 11 s ago, the others 6 s ago
    table.evict(clock.now)
    assert [table.get(rid) for rid in old] == [None, None, None]
    assert all(table.get(rid) is not None for rid in [*young, failed.request_id])
    clock.now += 3600  # a pending record never expires
    table.evict(clock.now)
    assert table.get(pending.request_id) is pending and table.pending_count() == 1
    assert table.get(failed.request_id) is None and table.get(young[0]) is None


def test_beyond_the_size_cap_the_earliest_finished_go_and_pending_ones_stay(
    loop: asyncio.AbstractEventLoop,
) -> None:
    table = FutureTable(max_records=4, clock=Clock())
    waiting = table.new("OptimStep", "model-1")  # the oldest record, still pending
    ids = _finished(table, 5)
    table.evict(1000.0)
    assert table.get(waiting.request_id) is waiting
    assert [table.get(rid) is not None for rid in ids] == [False, False, True, True, True]
    table.complete(waiting, "done")  # finished after ids[2]: ids[2] goes first
    latest = _finished(table, 1)
    table.evict(1000.0)
    assert table.get(ids[2]) is None
    assert all(table.get(rid) is not None for rid in [waiting.request_id, *ids[3:], *latest])


def test_a_dropped_record_releases_its_result_memory(loop: asyncio.AbstractEventLoop) -> None:
    clock = Clock()
    budget = MemoryBudget(1 << 20)
    table = FutureTable(ttl_seconds=10, budget=budget, sizer=lambda result: 100, clock=clock)
    _finished(table, 3)
    assert budget.held() == 300
    clock.now += 11
    table.evict(clock.now)
    assert budget.held() == 0


class _CountedRecord(futures.FutureRecord):
    """A FutureRecord that counts how often anything reads its completion time."""

    reads = 0

    def __getattribute__(self, name: str) -> Any:
        if name == "completed_at":
            _CountedRecord.reads += 1
        return super().__getattribute__(name)


def test_a_maintenance_tick_does_not_visit_every_live_record(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thousands of fresh finished records (kept an hour) and pending ones: evicting nothing
    reads the completion time of a few records, not of all of them."""
    monkeypatch.setattr(futures, "FutureRecord", _CountedRecord)
    clock = Clock()
    table = FutureTable(ttl_seconds=3600, clock=clock)
    _finished(table, 5000)
    for _ in range(2000):
        table.new("Sample", "sampler-1")
    clock.now += 1
    _CountedRecord.reads = 0
    table.evict(clock.now)
    assert _CountedRecord.reads <= 3
    assert table.pending_count() == 2000
    assert table.cancel_pending({"sampler-1"}, "gone") == 2000


def _retained_bytes(make: Any, count: int) -> float:
    """Traced bytes still allocated per item after ``make()`` ran ``count`` times."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [make() for _ in range(count)]
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(kept) == count
    return (after - before) / count


def test_a_delivered_and_released_record_is_small(loop: asyncio.AbstractEventLoop) -> None:
    """A finished record kept for its TTL after its result went holds little: no event, no
    attribute dict, no memory holdings (120k of them after 40 runs of 3000 samples)."""
    budget = MemoryBudget(1 << 30)
    table = FutureTable(budget=budget, sizer=lambda result: 100)

    def sample() -> None:
        record = table.new("Sample", "sampler-1", budget.hold("jobs", 10))
        record.feed = ("sampler-1", 0)
        table.complete(record, ["result"])
        table.delivered(record)
        table.release(record)

    sample()  # the table's containers exist
    per_record = _retained_bytes(sample, 2000)
    assert per_record < 450, per_record
    assert budget.held() == 0
