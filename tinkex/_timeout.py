"""``Timeout`` and ``RequestOptions``: names only, kept so code importing them keeps working.

``tinker.Timeout`` / ``tinker.RequestOptions`` are in the official SDK's ``__all__``, but its
public clients accept neither (only its generated low-level client does, which ``tinker``
does not hand out), so no tinkex method takes them either. tinkex's timeouts and retries are
``ClientSettings.timeout`` / ``connect_timeout`` / ``max_retries`` (see ``tinkex._config``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

import attrs

__all__ = ["Timeout", "RequestOptions"]


@attrs.frozen
class Timeout:
    """Timeouts in seconds, e.g. ``Timeout(60.0, connect=5.0)`` (a name only, see above).

    ``read``/``write``/``pool`` default to ``timeout``.
    """

    timeout: float | None = 60.0
    connect: float | None = None
    read: float | None = None
    write: float | None = None
    pool: float | None = None


class RequestOptions(TypedDict, total=False):
    """The official SDK's per-request options (a name only, see above)."""

    headers: Mapping[str, str]
    max_retries: int
    timeout: float | Timeout | None
    params: Mapping[str, Any]
    extra_json: Mapping[str, Any]
    idempotency_key: str
    follow_redirects: bool
