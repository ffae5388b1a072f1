"""Fixtures shared by the unit tests of more than one folder."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import responses

from tinkex.telemetry import attach, detach

#: One telemetry event as a test sees it: (name, measurements, metadata).
Event = tuple[str, dict[str, Any], dict[str, Any]]


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    """A ``responses`` mock of requests' adapter; replies a test registers need not all be used."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def events() -> Iterator[list[Event]]:
    """Every telemetry event emitted while the test runs, in order."""
    seen: list[Event] = []
    attach("unit-test-events", "*", lambda e, m, md: seen.append((e, dict(m), dict(md))))
    try:
        yield seen
    finally:
        detach("unit-test-events")
