"""Pytest plugin (entry point ``pytest11: tinkex``): a running local Tinker server for tests.

Fixtures:

* ``tinker_server`` (session scope): one :class:`~tinkex.local.LocalServer` shared by the test
  session, with a temporary data directory. Use ``tinker_server.base_url`` and
  ``tinker_server.api_key`` (``"tml-local"``) with ``tinker.ServiceClient`` or ``tinkex``.
* ``tinker_server_factory`` (function scope): ``tinker_server_factory(**kwargs)`` starts a
  dedicated LocalServer with the given options (``faults=...``, ``api_key=...``, ``data_dir=...``)
  and closes it at the end of the test.

Importing this module is cheap: the server is imported inside the fixtures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tinkex.local.server import LocalServer


@pytest.fixture(scope="session")
def tinker_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """A running local Tinker server shared by the whole test session."""
    from tinkex.local.server import LocalServer

    data_dir = tmp_path_factory.mktemp("tinker-server")
    with LocalServer(data_dir=str(data_dir)) as server:
        yield server


@pytest.fixture()
def tinker_server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., LocalServer]]:
    """Start extra LocalServers with custom options; each is closed after the test."""
    from tinkex.local.server import LocalServer

    started: list[LocalServer] = []

    def start(**kwargs: Any) -> LocalServer:
        if "data_dir" not in kwargs:
            kwargs["data_dir"] = str(tmp_path_factory.mktemp("tinker-server"))
        server = LocalServer(**kwargs)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in reversed(started):
            server.close()
