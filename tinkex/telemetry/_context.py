"""What a telemetry event was emitted for: the public call's ids and the user's metadata.

Events of HTTP requests (``tinkex.http.request.*``) carry, besides the request itself, the
public method that made it (``sdk_method``), the ids of the client it was called on
(``session_id``, ``model_id``, ``sampling_session_id``, whichever apply) and the metadata the
user attached with :func:`metadata`::

    with tinkex.telemetry.metadata(experiment="sweep-3", step=12):
        training_client.forward_backward(batch, "cross_entropy").result()

Both travel in context variables that the clients' worker threads inherit from the call that
queued their work, so polls and resends made later on other threads carry them too. The ids
are read only when an event is emitted to a handler (no cost otherwise).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

__all__ = ["call_context", "calling", "metadata"]

_CALLER: ContextVar[object | None] = ContextVar("tinkex_telemetry_caller", default=None)
_METADATA: ContextVar[Mapping[str, Any] | None] = ContextVar(
    "tinkex_telemetry_metadata", default=None
)


@contextmanager
def metadata(**values: Any) -> Iterator[None]:
    """Attach ``values`` to the telemetry events of every call made inside the block (nested
    blocks add to, and override, the outer ones)."""
    outer = _METADATA.get()
    token = _METADATA.set({**(outer or {}), **values})
    try:
        yield
    finally:
        _METADATA.reset(token)


def calling(client: object) -> Any:
    """Set the client a public call runs on (``tinkex._transport.sdk_method``); returns the
    token to reset."""
    return _CALLER.set(client)


def reset_calling(token: Any) -> None:
    _CALLER.reset(token)


def call_context() -> dict[str, Any]:
    """The ids of the client of the running public call, and the user's metadata."""
    out: dict[str, Any] = {}
    client = _CALLER.get()
    if client is not None:
        holder = getattr(client, "_holder", None) or getattr(client, "holder", None)
        session_id = getattr(holder, "current_session_id", None)
        if isinstance(session_id, str):
            out["session_id"] = session_id
        for name in ("model_id", "sampling_session_id"):
            value = getattr(client, name, None)
            if isinstance(value, str):
                out[name] = value
    user = _METADATA.get()
    if user:
        out["metadata"] = dict(user)
    return out
