"""The shared base of ``RestClient`` and ``AdminClient``: a client without a session.

It owns a session-less :class:`~tinkex.clients._holder.ClientHolder` (its client config is
fetched at construction), runs each call on the holder's workers, and offers the raw
``request`` to any endpoint (a tinkex extension).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from tinkex._futures import APIFuture
from tinkex.clients._holder import ClientHolder
from tinkex.clients._http_options import settings_from_options
from tinkex.clients._raw_request import RawResponse, send_raw
from tinkex.types._converter import to_wire

if TYPE_CHECKING:
    from tinkex.telemetry import Reporter

__all__ = ["SessionlessClient"]

T = TypeVar("T")


class SessionlessClient:
    """Shared base: a session-less holder (client config fetched at construction)."""

    _name = "RestClient"

    def __init__(
        self,
        _holder: ClientHolder | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Connect to ``base_url`` with ``api_key`` (defaults as for ``ServiceClient``).

        ``**kwargs`` are ``ServiceClient``'s HTTP options (``timeout``, ``max_retries``,
        ``default_headers``, ``default_query``, ``connect_timeout``, ``max_connections``,
        ``proxy``, ``proxy_headers``); unknown ones are ignored with a ``FutureWarning``, and
        none may be combined with ``_holder``.
        """
        if _holder is None:
            settings = settings_from_options(
                self._name, kwargs, stacklevel=2, base_url=base_url, api_key=api_key
            )
            _holder = ClientHolder(settings, with_session=False, workers=16)
        elif kwargs:
            raise TypeError(
                f"{self._name}(holder, ...) takes no HTTP options ({sorted(kwargs)}): "
                "they belong to the client that made the holder"
            )
        self.holder = _holder
        self.holder.client_config()

    def _run(self, fn: Callable[[], T]) -> APIFuture[T]:
        return self.holder.run(fn)

    def _get(self, path: str, cls: type[T], sdk: str, params: dict[str, Any] | None = None) -> T:
        return self.holder.call("GET", path, cls, params=params, sdk_method=f"{self._name}.{sdk}")

    def _send(self, method: str, path: str, sdk: str, body: Any = None) -> None:
        self.holder.request(
            method,
            path,
            json=None if body is None else to_wire(body),
            sdk_method=f"{self._name}.{sdk}",
        )

    def close(self) -> None:
        """Stop this client's worker threads."""
        self.holder.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_telemetry(self) -> Reporter | None:
        """The telemetry reporter (batched events to ``/api/v1/telemetry``), or None when off.

        ``get_telemetry().log("my_event", {"k": 1})`` adds your own events.
        """
        return self.holder.telemetry()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> APIFuture[RawResponse]:
        """A call to any endpoint, answered as the raw response (a tinkex extension).

        Headers, credential, retries and errors as for every method; ``path`` is on the base
        URL (``"/api/v1/healthz"``). The answer has ``status_code``, ``headers``, ``content``,
        ``json()`` and ``request_id``::

            answer = rest_client.request("GET", "/api/v1/healthz").result()
            print(answer.status_code, answer.headers["content-type"], answer.json())

        Raises (through the future): ValueError for a full URL or an unknown method;
        APIStatusError for a non-2xx answer; APIConnectionError.
        """
        return self._run(
            lambda: send_raw(
                self.holder,
                self._name,
                method,
                path,
                json=json,
                params=params,
                headers=headers,
                timeout=timeout,
            )
        )
