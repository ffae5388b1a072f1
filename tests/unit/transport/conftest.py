"""Fixtures for transport tests: settings, a fake clock/sleep, a transport wired to them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tinkex._config import ClientSettings
from tinkex._transport import RateLimiter, Transport

BASE_URL = "http://tinker.test"
API_KEY = "tml-secret-key-0123456789"


class FakeClock:
    """A monotonic clock that only moves when someone sleeps on it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings() -> ClientSettings:
    return ClientSettings(base_url=BASE_URL, api_key=API_KEY)


@pytest.fixture(autouse=True)
def _fresh_registries() -> Iterator[None]:
    RateLimiter.reset_registry()
    yield
    Transport.close_all()
    RateLimiter.reset_registry()


@pytest.fixture
def transport(settings: ClientSettings, clock: FakeClock) -> Iterator[Transport]:
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    with Transport(settings, rate_limiter=limiter, sleep=clock.sleep, clock=clock) as t:
        yield t
