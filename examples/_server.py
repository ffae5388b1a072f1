"""The one helper the examples share: use TINKER_BASE_URL when set, else a local server.

Every example calls ``with server():`` around its ``main()``. Inside the block
``TINKER_BASE_URL``/``TINKER_API_KEY`` point at the chosen server, so the example code itself is
plain Tinker code: ``tinker.ServiceClient()`` with no arguments, exactly as with the official SDK.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Any base model name works on the local server (it serves its tiny model under every name).
BASE_MODEL = os.environ.get("TINKEX_EXAMPLE_BASE_MODEL", "Qwen/Qwen3-8B")


@contextmanager
def server(**local_options: Any) -> Iterator[str]:
    """Yield the base URL in use; start an embedded LocalServer unless TINKER_BASE_URL is set.

    ``local_options`` (e.g. ``faults=...``) go to :class:`tinkex.local.LocalServer` and are
    ignored when an external server is configured.
    """
    if os.environ.get("TINKER_BASE_URL"):
        yield os.environ["TINKER_BASE_URL"]
        return
    from tinkex.local import LocalServer

    saved = {k: os.environ.get(k) for k in ("TINKER_BASE_URL", "TINKER_API_KEY")}
    with LocalServer(**local_options) as local:
        os.environ["TINKER_BASE_URL"] = local.base_url
        os.environ["TINKER_API_KEY"] = local.api_key
        try:
            yield local.base_url
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
