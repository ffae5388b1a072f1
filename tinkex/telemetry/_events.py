"""The event registry behind :mod:`tinkex.telemetry`: attach, detach, emit.

Handlers are called synchronously on the emitting thread. A handler that raises is logged
and skipped; it never breaks the request that emitted the event. The names and payload keys of
the events tinkex emits are in :mod:`tinkex.telemetry._schema`.
"""

from __future__ import annotations

import itertools
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
_logger_ids = itertools.count(1)


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


def attached() -> dict[str, tuple[str, ...]]:
    """A snapshot of the registry: event name -> ids of the handlers attached to it."""
    with _lock:
        return {name: tuple(hid for hid, _ in registered) for name, registered in _handlers.items()}


def has_handlers(event: str) -> bool:
    """Whether emitting ``event`` would call anything (lets hot paths skip building metadata)."""
    return bool(_handlers.get(event) or _handlers.get("*"))


def emit(
    event: str,
    measurements: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> None:
    """Deliver an event to its handlers; exceptions in handlers are logged, never raised.

    ``measurements`` maps names to numbers; both mappings follow the event's schema
    (``EVENT_SCHEMAS``) for the events tinkex emits.
    """
    registered = _handlers.get(event, ()) + _handlers.get("*", ())
    if not registered:
        return
    values: Mapping[str, float] = measurements if measurements is not None else _EMPTY
    meta = metadata if metadata is not None else _EMPTY
    for handler_id, handler in registered:
        try:
            handler(event, values, meta)
        except Exception:
            logger.exception("telemetry handler %r failed on event %r", handler_id, event)


def attach_logger(
    level: int | str = logging.INFO,
    *,
    events: str | list[str] | tuple[str, ...] = "*",
    logger_name: str = "tinkex.telemetry.events",
    handler_id: str | None = None,
) -> str:
    """Log every telemetry event (or only ``events``) via :mod:`logging`; returns the handler id.

    Each event becomes one record ``"<event> key=value ..."`` at ``level`` on the logger named
    ``logger_name``. Secrets that look like API keys or bearer tokens are masked. Pass the
    returned id to :func:`detach` to stop logging.

    >>> hid = attach_logger(level="DEBUG")
    >>> detach(hid)
    True

    Raises:
        ValueError: ``level`` is not a logging level name or number, or ``handler_id`` is taken.
    """
    if isinstance(level, str):
        resolved = logging.getLevelName(level.upper())
        if not isinstance(resolved, int):
            raise ValueError(f"attach_logger level must be a logging level, got {level!r}")
        numeric_level = resolved
    else:
        numeric_level = int(level)
    target = logging.getLogger(logger_name)
    hid = handler_id if handler_id is not None else f"tinkex.logger.{next(_logger_ids)}"

    def log_event(
        event: str, measurements: Mapping[str, float], metadata: Mapping[str, Any]
    ) -> None:
        if not target.isEnabledFor(numeric_level):
            return
        from tinkex.telemetry._scrub import scrub

        fields = {**metadata, **measurements}
        text = " ".join(f"{key}={value!r}" for key, value in scrub(fields).items())
        target.log(numeric_level, "%s %s", event, text)

    attach(hid, events, log_event)
    return hid
