"""Metrics fed by tinkex telemetry: counters, gauges, latency histograms per endpoint.

Opt in with :func:`enable`, read with :func:`snapshot`::

    import tinkex.metrics
    tinkex.metrics.enable()
    ...  # use the clients
    snap = tinkex.metrics.snapshot()
    snap["endpoints"]["POST /api/v1/forward_backward"]["latency"]["p99"]

The module-level functions use one process-wide :class:`MetricsRegistry`; create your own
registries for isolated measurements. Standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tinkex.metrics._registry import (
    DEFAULT_BUCKETS,
    DEFAULT_EVENTS,
    Histogram,
    MetricsRegistry,
    normalize_path,
    percentile,
)

__all__ = [
    "DEFAULT_BUCKETS",
    "DEFAULT_EVENTS",
    "Histogram",
    "MetricsRegistry",
    "add_gauge",
    "configure",
    "default_registry",
    "disable",
    "enable",
    "increment",
    "normalize_path",
    "observe",
    "percentile",
    "reset",
    "set_gauge",
    "snapshot",
    "to_dict",
    "to_json",
]

_DEFAULT = MetricsRegistry(handler_id="tinkex.metrics")


def default_registry() -> MetricsRegistry:
    """The process-wide registry behind the module-level functions."""
    return _DEFAULT


def enable(events: Iterable[str] = DEFAULT_EVENTS) -> MetricsRegistry:
    """Start collecting from telemetry into the default registry (idempotent)."""
    return _DEFAULT.enable(events)


def disable() -> bool:
    """Stop collecting; returns whether collection was on. Values are kept."""
    return _DEFAULT.disable()


def configure(*, max_samples: int | None = None, buckets: Iterable[float] | None = None) -> None:
    """Histogram settings of the default registry: see :meth:`MetricsRegistry.configure`."""
    _DEFAULT.configure(max_samples=max_samples, buckets=buckets)


def snapshot() -> dict[str, Any]:
    """See :meth:`MetricsRegistry.snapshot`."""
    return _DEFAULT.snapshot()


def to_dict() -> dict[str, Any]:
    """Same as :func:`snapshot`."""
    return _DEFAULT.snapshot()


def to_json(**kwargs: Any) -> str:
    """:func:`snapshot` as a JSON string."""
    return _DEFAULT.to_json(**kwargs)


def reset() -> None:
    """Clear the default registry."""
    _DEFAULT.reset()


def increment(name: str, value: float = 1.0) -> None:
    """Add to a counter of the default registry."""
    _DEFAULT.increment(name, value)


def set_gauge(name: str, value: float) -> None:
    """Set a gauge of the default registry."""
    _DEFAULT.set_gauge(name, value)


def add_gauge(name: str, delta: float) -> None:
    """Move a gauge of the default registry."""
    _DEFAULT.add_gauge(name, delta)


def observe(name: str, value: float) -> None:
    """Record a value in a histogram of the default registry."""
    _DEFAULT.observe(name, value)
