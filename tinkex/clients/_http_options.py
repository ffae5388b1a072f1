"""The HTTP options ``ServiceClient(**kwargs)`` and ``RestClient(**kwargs)`` take.

The official ``ServiceClient(**kwargs)`` hands ``timeout``, ``max_retries``,
``default_headers``, ``default_query`` (and ``http_client``) to its HTTP client; tinkex turns
them, and its own connection options, into :meth:`ClientSettings.resolve` arguments in this
one place, so both clients read them the same way (explicit beats environment).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from tinkex._config import ClientSettings

__all__ = ["HTTP_OPTIONS", "pop_http_options", "settings_from_options", "warn_unknown_options"]

#: Every option name taken out of ``**kwargs`` (``http_client`` is warned about, see below).
HTTP_OPTIONS = (
    "timeout",
    "max_retries",
    "default_headers",
    "default_query",
    "connect_timeout",
    "max_connections",
    "proxy",
    "proxy_headers",
)
_AS_GIVEN = ("max_retries", "connect_timeout", "max_connections", "proxy")


def query_value(value: object) -> str:
    """A query value as the official SDK's HTTP client writes it (``true``, ``""`` for None)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def pop_http_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Take the HTTP options out of ``kwargs`` as ``ClientSettings.resolve`` arguments.

    ``timeout`` is seconds, or an object with ``read``/``connect`` like ``httpx.Timeout``;
    ``default_headers``, ``default_query`` and ``proxy_headers`` are mappings, ``proxy`` a URL;
    ``connect_timeout``, ``max_connections`` (the connection-pool size) and ``max_retries`` are
    numbers. An ``http_client`` cannot be used
    (tinkex speaks HTTP through ``requests``): it stays in ``kwargs``, so the caller's
    unknown-option ``FutureWarning`` names it.
    """
    options: dict[str, Any] = {}
    if "timeout" in kwargs:
        timeout = kwargs.pop("timeout")
        read = getattr(timeout, "read", timeout)
        connect = getattr(timeout, "connect", None)
        if read is not None:
            options["timeout"] = float(read)
        if connect is not None:
            options["connect_timeout"] = float(connect)
    for name in _AS_GIVEN:
        if name in kwargs:
            options[name] = kwargs.pop(name)
    for name in ("default_headers", "proxy_headers"):
        if name in kwargs:
            options[name] = dict(kwargs.pop(name) or {})
    if "default_query" in kwargs:
        query: Mapping[str, object] = kwargs.pop("default_query") or {}
        options["default_query"] = {key: query_value(value) for key, value in query.items()}
    return options


def warn_unknown_options(client: str, kwargs: Mapping[str, Any], stacklevel: int) -> None:
    """One ``FutureWarning`` naming the options ``client`` ignores (none: no warning)."""
    if kwargs:
        warnings.warn(
            f"{client} ignores unknown options {sorted(kwargs)}",
            FutureWarning,
            stacklevel=stacklevel + 1,
        )


def settings_from_options(
    client: str,
    kwargs: dict[str, Any],
    *,
    stacklevel: int,
    default_headers_overrides: Mapping[str, str] | None = None,
    **explicit: Any,
) -> ClientSettings:
    """Resolve the settings of ``client`` from its arguments and its ``**kwargs``.

    ``default_headers_overrides`` (the official ``ServiceClient`` argument) wins over
    ``default_headers``; ``explicit`` are the client's named arguments (``base_url`` ...).
    """
    http = pop_http_options(kwargs)
    warn_unknown_options(client, kwargs, stacklevel + 1)
    if default_headers_overrides:
        http["default_headers"] = {**http.get("default_headers", {}), **default_headers_overrides}
    return ClientSettings.resolve(**explicit, **http)
