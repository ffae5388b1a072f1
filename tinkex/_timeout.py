"""``Timeout`` and ``RequestOptions``: per-request options names kept from the official SDK."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

import attrs

__all__ = ["Timeout", "RequestOptions"]


@attrs.frozen
class Timeout:
    """Timeouts in seconds, e.g. ``Timeout(60.0, connect=5.0)``.

    ``read``/``write``/``pool`` default to ``timeout``.
    """

    timeout: float | None = 60.0
    connect: float | None = None
    read: float | None = None
    write: float | None = None
    pool: float | None = None


class RequestOptions(TypedDict, total=False):
    """Per-request options accepted for compatibility."""

    headers: Mapping[str, str]
    max_retries: int
    timeout: float | Timeout | None
    params: Mapping[str, Any]
    extra_json: Mapping[str, Any]
    idempotency_key: str
    follow_redirects: bool
