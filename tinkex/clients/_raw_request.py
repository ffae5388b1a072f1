"""``RestClient.request``: one call to any endpoint of the API, answered as the raw response.

For what the typed methods do not cover: an endpoint this SDK has no method for, or the
answer's headers (``x-request-id``, rate-limit headers). The call goes through the same
transport as every other (headers, credential, retries, error mapping, telemetry); only the
decoding into a type is left to the caller. Paths stay on the client's base URL, so the API
key is never sent to another origin.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tinkex._transport import Response
from tinkex.clients._holder import ClientHolder

__all__ = ["RawResponse", "send_raw"]

#: The answer of :meth:`RestClient.request`: ``status_code``, ``headers`` (case-insensitive),
#: ``content``, ``text``, ``json()``, ``request_id``, ``elapsed``.
RawResponse = Response

_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


def _checked(method: str, path: str) -> tuple[str, str]:
    verb = method.upper()
    if verb not in _METHODS:
        raise ValueError(f"request(method={method!r}): one of {', '.join(sorted(_METHODS))}")
    if not path.startswith("/") or path.startswith("//"):
        raise ValueError(
            f"request(path={path!r}): a path on the client's base URL, such as "
            "'/api/v1/healthz' (a full URL is refused, so the API key stays with its server)"
        )
    return verb, path


def send_raw(
    holder: ClientHolder,
    client: str,
    method: str,
    path: str,
    *,
    json: Any = None,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Response:
    """Send one request through ``holder`` (``client`` names the caller in ``x-sdk-method``).

    Raises:
        ValueError: an unknown method, or a path that is not on the base URL.
        APIStatusError: a non-2xx answer (after the usual retries); APIConnectionError.
    """
    verb, checked_path = _checked(method, path)
    return holder.request(
        verb,
        checked_path,
        json=json,
        params=params,
        headers=headers,
        timeout=timeout,
        sdk_method=f"{client}.request",
    )
