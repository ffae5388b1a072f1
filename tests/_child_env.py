"""The environment of a child process a test starts (the CLI, the demo, an example, a docs page).

The caller's environment, less its own Tinker settings (``TINKER_*``, ``TINKEX_*``: a developer's
key or base URL must not leak into a test), with telemetry off, and pointed at a server when one
is given. ``pytest`` finds this module through ``pythonpath = ["tests"]`` (``from _child_env
import child_env``).
"""

from __future__ import annotations

import os

__all__ = ["child_env"]

#: The prefixes of the settings a child does not inherit from the caller.
SETTING_PREFIXES = ("TINKER_", "TINKEX_")


def child_env(
    base_url: str | None = None,
    api_key: str | None = None,
    *,
    drop: tuple[str, ...] = (),
    **extra: str,
) -> dict[str, str]:
    """``os.environ`` without Tinker settings (nor variables starting with a ``drop`` prefix),
    with ``TINKER_TELEMETRY=0``, the server's URL and key when given, then ``extra`` on top."""
    prefixes = SETTING_PREFIXES + drop
    env = {name: value for name, value in os.environ.items() if not name.startswith(prefixes)}
    env["TINKER_TELEMETRY"] = "0"
    if base_url is not None:
        env["TINKER_BASE_URL"] = base_url
    if api_key is not None:
        env["TINKER_API_KEY"] = api_key
    env.update(extra)
    return env
