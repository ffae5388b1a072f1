"""Telemetry hooks: attach handlers to named events that tinkex emits.

This package is importable cheaply from every layer (transport, futures, clients); it
imports nothing heavy. ``emit`` is a no-op when no handler is attached to the event.
"""

from tinkex.telemetry._events import attach, detach, emit, has_handlers

__all__ = ["attach", "detach", "emit", "has_handlers"]
