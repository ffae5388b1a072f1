"""RateLimiter (per key back-off windows) and BytesSemaphore."""

from __future__ import annotations

import threading
import time

import pytest
import responses

from tinkex._config import ClientSettings
from tinkex._exceptions import RateLimitError
from tinkex._transport import NO_RETRY, BytesSemaphore, RateLimiter, Transport

from .conftest import API_KEY, BASE_URL, FakeClock

# ---- RateLimiter ----------------------------------------------------------------------------


def test_for_key_is_process_wide_per_key() -> None:
    a = RateLimiter.for_key(BASE_URL, "tml-a")
    assert RateLimiter.for_key(BASE_URL + "/", "tml-a") is a
    assert RateLimiter.for_key(BASE_URL, "tml-b") is not a
    assert RateLimiter.for_key("http://elsewhere", "tml-a") is not a
    assert all("tml-a" not in str(k) for k in RateLimiter._registry)  # stored hashed


def test_back_off_holds_one_key_and_not_the_other(clock: FakeClock) -> None:
    a = RateLimiter.for_key(BASE_URL, "tml-a", clock=clock, sleep=clock.sleep)
    b = RateLimiter.for_key(BASE_URL, "tml-b", clock=clock, sleep=clock.sleep)
    a.back_off(3.0)
    assert b.wait() == 0.0
    assert clock.sleeps == []
    assert a.remaining() == pytest.approx(3.0)
    assert a.wait() == pytest.approx(3.0)
    assert clock.sleeps == [pytest.approx(3.0)]
    assert a.wait() == 0.0  # window passed
    assert a.remaining() == 0.0


def test_back_off_extends_but_never_shortens(clock: FakeClock) -> None:
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    limiter.back_off(5)
    limiter.back_off(1)
    assert limiter.remaining() == pytest.approx(5)
    clock.now += 2
    limiter.back_off(4)
    assert limiter.remaining() == pytest.approx(4)


def test_waiters_sleep_through_a_window_extended_meanwhile(clock: FakeClock) -> None:
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    limiter.back_off(1)
    original_sleep = clock.sleep
    extended = []

    def sleep(seconds: float) -> None:
        original_sleep(seconds)
        if not extended:
            extended.append(True)
            limiter.back_off(2)  # another 429 arrived while we slept

    limiter._sleep = sleep
    assert limiter.wait() == pytest.approx(3)


def test_429_on_one_key_delays_later_requests_of_that_key_only(clock: FakeClock) -> None:
    settings_a = ClientSettings(base_url=BASE_URL, api_key=API_KEY)
    settings_b = ClientSettings(base_url=BASE_URL, api_key="tml-second-key")
    limiter_a = RateLimiter.for_key(BASE_URL, API_KEY, clock=clock, sleep=clock.sleep)
    limiter_b = RateLimiter.for_key(BASE_URL, "tml-second-key", clock=clock, sleep=clock.sleep)
    with responses.RequestsMock() as mocked:
        mocked.post(f"{BASE_URL}/api/v1/a", status=429, json={}, headers={"retry-after": "4"})
        mocked.post(f"{BASE_URL}/api/v1/b", json={})
        mocked.post(f"{BASE_URL}/api/v1/c", json={})
        with (
            Transport(settings_a, sleep=clock.sleep, clock=clock) as ta,
            Transport(settings_b, sleep=clock.sleep, clock=clock) as tb,
        ):
            assert ta.rate_limiter is limiter_a and tb.rate_limiter is limiter_b
            with pytest.raises(RateLimitError):
                ta.request("POST", "/api/v1/a", json={}, retry=NO_RETRY)
            tb.request("POST", "/api/v1/b", json={})
            assert clock.sleeps == []  # key B unaffected
            ta.request("POST", "/api/v1/c", json={})
            assert clock.sleeps == [pytest.approx(4.0)]  # key A waited out the window


def test_429_without_retry_after_backs_off_one_second(
    transport: Transport, clock: FakeClock
) -> None:
    with responses.RequestsMock() as mocked:
        mocked.post(f"{BASE_URL}/api/v1/a", status=429, json={})
        with pytest.raises(RateLimitError):
            transport.request("POST", "/api/v1/a", json={}, retry=NO_RETRY)
    assert transport.rate_limiter.remaining() == pytest.approx(1.0)


def test_retried_429_waits_once_not_twice(transport: Transport, clock: FakeClock) -> None:
    with responses.RequestsMock() as mocked:
        mocked.post(f"{BASE_URL}/api/v1/a", status=429, json={}, headers={"retry-after": "2"})
        mocked.post(f"{BASE_URL}/api/v1/a", json={})
        transport.request("POST", "/api/v1/a", json={})
    assert clock.sleeps == [pytest.approx(2.0)]


# ---- BytesSemaphore -------------------------------------------------------------------------


def test_acquire_within_capacity_and_release() -> None:
    sem = BytesSemaphore(100)
    assert sem.acquire(60)
    assert sem.acquire(40)
    assert sem.in_flight == 100
    assert not sem.acquire(1, timeout=0.01)
    sem.release(60)
    assert sem.acquire(50, timeout=0)
    assert sem.in_flight == 90
    assert "90/100" in repr(sem)


def test_oversized_item_passes_alone() -> None:
    sem = BytesSemaphore(100)
    assert sem.acquire(1000)  # nothing in flight: passes
    assert sem.in_flight == 1000
    assert not sem.acquire(1, timeout=0.01)  # everything else waits for it
    sem.release(1000)
    assert sem.acquire(10)
    assert not sem.acquire(1000, timeout=0.01)  # oversized waits until nothing is in flight


def test_acquire_blocks_until_release() -> None:
    sem = BytesSemaphore(10)
    sem.acquire(10)
    acquired = threading.Event()

    def waiter() -> None:
        sem.acquire(5)
        acquired.set()

    t = threading.Thread(target=waiter)
    t.start()
    assert not acquired.wait(0.05)
    sem.release(10)
    assert acquired.wait(2)
    t.join(2)
    assert sem.in_flight == 5


def test_hold_context_manager_and_timeout() -> None:
    sem = BytesSemaphore(10)
    with sem.hold(8):
        assert sem.in_flight == 8
        started = time.monotonic()
        with (
            pytest.raises(TimeoutError, match=r"could not reserve 5 bytes within 0\.02 s"),
            sem.hold(5, timeout=0.02),
        ):
            pass
        assert time.monotonic() - started >= 0.015
    assert sem.in_flight == 0


def test_hold_releases_on_exception() -> None:
    sem = BytesSemaphore(10)
    with pytest.raises(KeyError), sem.hold(7):
        raise KeyError("x")
    assert sem.in_flight == 0


def test_invalid_arguments_name_the_value() -> None:
    with pytest.raises(ValueError, match="capacity must be > 0, got 0"):
        BytesSemaphore(0)
    sem = BytesSemaphore(10)
    with pytest.raises(ValueError, match="nbytes must be >= 0, got -1"):
        sem.acquire(-1)
    with pytest.raises(ValueError, match=r"must be in \[0, 0\], got 3"):
        sem.release(3)


def test_many_threads_never_exceed_capacity() -> None:
    sem = BytesSemaphore(100)
    peak = [0]
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(50):
            with sem.hold(30), lock:
                peak[0] = max(peak[0], sem.in_flight)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] <= 90
    assert sem.in_flight == 0
