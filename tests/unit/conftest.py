"""Fixtures shared by the unit tests of more than one folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    """A ``responses`` mock of requests' adapter; replies a test registers need not all be used."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps
