"""``TINKEX_DUMP_HEADERS=1``: one INFO record per request and its answer, secrets masked.

Both transports call :func:`dump_exchange` after each attempt that got an answer; records go to
the ``tinkex.wire`` logger. Header values that are credentials are printed as ``***``, bodies
only by their size.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from tinkex._transport._response import Response

__all__ = ["dump_exchange", "wire_logger"]

wire_logger = logging.getLogger("tinkex.wire")
#: Headers whose values are never logged.
_SECRET_HEADERS = frozenset(
    {
        "x-api-key",
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "cf-access-client-secret",
        "x-tinker-weights-access-token",
    }
)


def _masked(name: str, value: str) -> str:
    return "***" if name.lower() in _SECRET_HEADERS else value


def dump_exchange(
    url: str,
    label: str,
    headers: Mapping[str, str],
    body: bytes | None,
    response: Response,
    retry_count: int,
) -> None:
    """``TINKEX_DUMP_HEADERS``: the request and its answer, headers masked, bodies by size."""
    lines = [f"> {label.partition(' ')[0]} {url} (attempt {retry_count})"]
    lines += [f">   {name}: {_masked(name, value)}" for name, value in headers.items()]
    if body is not None:
        lines.append(f">   ({len(body)} bytes)")
    lines.append(f"< {response.status_code} in {response.elapsed:.3f} s")
    lines += [f"<   {name}: {_masked(name, value)}" for name, value in response.headers.items()]
    lines.append(f"<   ({len(response.content)} bytes)")
    wire_logger.info("%s", "\n".join(lines))
