"""tinkex.local: a Tinker-compatible HTTP server you run yourself, backed by a tiny numpy model.

The official ``tinker`` SDK and tinkex both talk to it over real HTTP::

    from tinkex.local import LocalServer

    with LocalServer() as server:          # a free port on 127.0.0.1, temporary data dir
        print(server.base_url, server.api_key)

Command line: ``tinkex serve [--host] [--port] [--data-dir DIR | --ephemeral] [--api-key]
[--faults SPEC] [--log-level] ...`` (``tinkex serve --help``).
Pytest: the ``tinker_server`` fixture (plugin ``tinkex.local.pytest_plugin``).

``LocalServer`` is imported lazily so that ``import tinkex.local`` (and the pytest plugin) stay
cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinkex._lazy import lazy_exports

if TYPE_CHECKING:
    from tinkex.local.server import LocalServer

__all__ = ["LocalServer"]

__getattr__, __dir__ = lazy_exports(__name__, globals(), {"LocalServer": ".server"})
