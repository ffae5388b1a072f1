"""Fixtures of the CLI tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tinkex.local import LocalServer


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalServer]:
    """A local server of the test module's own, with a data directory of its own, so what the
    module's commands list is what that module made."""
    from tinkex.local import LocalServer

    data_dir = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])
    with LocalServer(data_dir=str(data_dir)) as running:
        yield running
