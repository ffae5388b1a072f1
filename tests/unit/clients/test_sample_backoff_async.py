"""SampleBackoff for coroutines (the sampling client's asyncio path): the same window, slots and
bytes as the threaded ``wait``/``dispatch``, waited for without blocking the event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import CancelledError

import pytest

from tinkex._transport import BytesSemaphore
from tinkex.clients._sample_backoff import (
    THROTTLED_BYTES_FACTOR,
    THROTTLED_CONCURRENCY,
    SampleBackoff,
)


def test_await_window_waits_out_the_back_off_and_stops_on_close() -> None:
    backoff = SampleBackoff()
    backoff.back_off(10)
    stop = threading.Event()
    started = time.monotonic()
    asyncio.run(backoff.await_window(stop))
    assert time.monotonic() - started >= 0.9  # the 1 s window, minus clock granularity
    backoff.back_off(10)
    stop.set()
    with pytest.raises(CancelledError):
        asyncio.run(backoff.await_window(stop))


def test_adispatch_holds_bytes_x20_and_one_of_ten_slots_while_throttled() -> None:
    now = [100.0]
    backoff = SampleBackoff(clock=lambda: now[0])
    budget = BytesSemaphore(100_000)

    async def unthrottled() -> int:
        async with backoff.adispatch(7, budget):
            return budget.in_flight

    assert asyncio.run(unthrottled()) == 7
    assert budget.in_flight == 0

    backoff.back_off(7)
    now[0] += 1.5  # window over, still inside the 10 s throttle

    async def throttled() -> tuple[int, int]:
        inside = asyncio.Event()
        release = asyncio.Event()
        peak = [0]

        async def one() -> None:
            async with backoff.adispatch(7, budget):
                peak[0] = max(peak[0], budget.in_flight)
                inside.set()
                await release.wait()

        tasks = [asyncio.create_task(one()) for _ in range(THROTTLED_CONCURRENCY + 5)]
        await inside.wait()
        await asyncio.sleep(0.1)
        holding = budget.in_flight
        release.set()
        await asyncio.gather(*tasks)
        return holding, peak[0]

    holding, peak = asyncio.run(throttled())
    # Only ten dispatch at once, each counting 20 times its estimate; the rest wait their turn.
    assert holding == THROTTLED_CONCURRENCY * 7 * THROTTLED_BYTES_FACTOR
    assert peak == holding
    assert budget.in_flight == 0
