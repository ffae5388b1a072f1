"""The event registry behind :mod:`tinkex.telemetry`.

Handlers are called synchronously on the emitting thread. A handler that raises is logged
and skipped; it never breaks the request that emitted the event.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

logger = logging.getLogger("tinkex.telemetry")

#: ``handler(event, measurements, metadata)``
Handler = Callable[[str, Mapping[str, float], Mapping[str, Any]], None]

_lock = threading.Lock()
# Handler registry: process-wide by design (telemetry is a process concern), guarded by _lock.
# Values are tuples so emit() can read them without holding the lock.
_handlers: dict[str, tuple[tuple[str, Handler], ...]] = {}
_EMPTY: Mapping[str, Any] = {}


def attach(handler_id: str, events: str | list[str] | tuple[str, ...], handler: Handler) -> None:
    """Call ``handler`` for each event in ``events`` (``"*"`` matches every event).

    Raises:
        ValueError: a handler with ``handler_id`` is already attached.
    """
    names = (events,) if isinstance(events, str) else tuple(events)
    with _lock:
        for registered in _handlers.values():
            if any(hid == handler_id for hid, _ in registered):
                raise ValueError(f"telemetry handler {handler_id!r} is already attached")
        for name in names:
            _handlers[name] = (*_handlers.get(name, ()), (handler_id, handler))


def detach(handler_id: str) -> bool:
    """Remove a handler from every event; returns whether it was attached."""
    found = False
    with _lock:
        for name, registered in list(_handlers.items()):
            kept = tuple(item for item in registered if item[0] != handler_id)
            if len(kept) != len(registered):
                found = True
                if kept:
                    _handlers[name] = kept
                else:
                    del _handlers[name]
    return found


def has_handlers(event: str) -> bool:
    """Whether emitting ``event`` would call anything (lets hot paths skip building metadata)."""
    return bool(_handlers.get(event) or _handlers.get("*"))


def emit(
    event: str,
    measurements: Mapping[str, float] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> None:
    """Deliver an event to its handlers; exceptions in handlers are logged, never raised."""
    registered = _handlers.get(event, ()) + _handlers.get("*", ())
    if not registered:
        return
    values = measurements if measurements is not None else _EMPTY
    meta = metadata if metadata is not None else _EMPTY
    for handler_id, handler in registered:
        try:
            handler(event, values, meta)
        except Exception:
            logger.exception("telemetry handler %r failed on event %r", handler_id, event)
