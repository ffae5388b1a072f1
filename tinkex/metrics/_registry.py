"""Counters, gauges and latency histograms, fed by tinkex telemetry events."""

from __future__ import annotations

import bisect
import itertools
import json
import math
import random
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

from tinkex.telemetry import (
    CIRCUIT_BREAKER_STATE_CHANGE,
    CUSTOM_LOSS_EXCEPTION,
    CUSTOM_LOSS_STOP,
    FUTURE_API_ERROR,
    FUTURE_COMPLETE,
    FUTURE_CONNECTION_ERROR,
    FUTURE_QUEUE_STATE,
    FUTURE_REQUEST_FAILED,
    FUTURE_VALIDATION_ERROR,
    HTTP_REQUEST_EXCEPTION,
    HTTP_REQUEST_START,
    HTTP_REQUEST_STOP,
    HTTP_RETRY,
    REGULARIZER_EXCEPTION,
    REGULARIZER_STOP,
    CircuitBreakerMetadata,
    HttpRequestExceptionMetadata,
    HttpRequestStopMetadata,
    QueueStateMetadata,
    RegularizerMetadata,
    RetryMetadata,
    attach,
    detach,
)

#: The telemetry events a registry listens to when enabled.
DEFAULT_EVENTS: tuple[str, ...] = (
    HTTP_REQUEST_START,
    HTTP_REQUEST_STOP,
    HTTP_REQUEST_EXCEPTION,
    HTTP_RETRY,
    FUTURE_QUEUE_STATE,
    FUTURE_COMPLETE,
    FUTURE_API_ERROR,
    FUTURE_CONNECTION_ERROR,
    FUTURE_REQUEST_FAILED,
    FUTURE_VALIDATION_ERROR,
    CUSTOM_LOSS_STOP,
    CUSTOM_LOSS_EXCEPTION,
    REGULARIZER_STOP,
    REGULARIZER_EXCEPTION,
    CIRCUIT_BREAKER_STATE_CHANGE,
)
PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50", 50.0),
    ("p90", 90.0),
    ("p95", 95.0),
    ("p99", 99.0),
)
#: Upper bounds (seconds) of the bucket counts every histogram keeps by default: Elixir
#: Tinkex's latency buckets (1 ms ... 5 s), in the seconds tinkex's durations are measured in.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1.0,
    2.0,
    5.0,
)

# Path segments that are ids, not routes: uuids, long hex, numbers, tinker ids ("sess:train:0").
_ID_SEGMENT = re.compile(
    r"^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{16,}|\d+|.*:.*)$"
)


def normalize_path(path: str) -> str:
    """``path`` without its query string, with id-like segments replaced by ``{id}``.

    >>> normalize_path("/api/v1/sessions/3f2a:train:0/finish?x=1")
    '/api/v1/sessions/{id}/finish'
    """
    bare = path.split("?", 1)[0]
    return "/".join("{id}" if _ID_SEGMENT.match(seg) else seg for seg in bare.split("/"))


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of already-sorted values, interpolating linearly
    between closest ranks (numpy's default method).

    Raises:
        ValueError: no values, or ``q`` outside ``[0, 100]``.
    """
    if not sorted_values:
        raise ValueError("percentile of an empty sequence")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    position = (len(sorted_values) - 1) * q / 100.0
    lower = math.floor(position)
    upper = min(lower + 1, len(sorted_values) - 1)
    fraction = position - lower
    return sorted_values[lower] + (sorted_values[upper] - sorted_values[lower]) * fraction


def check_buckets(buckets: Iterable[float]) -> tuple[float, ...]:
    """``buckets`` as a tuple of floats, checked: finite and strictly increasing.

    Raises:
        ValueError: a bound is not a finite number, or the bounds are not strictly increasing.
    """
    bounds = tuple(buckets)
    for bound in bounds:
        if (
            isinstance(bound, bool)
            or not isinstance(bound, int | float)
            or not math.isfinite(bound)
        ):
            raise ValueError(f"histogram buckets must be finite numbers, got {bound!r}")
    if any(b <= a for a, b in itertools.pairwise(bounds)):
        raise ValueError(f"histogram buckets must be strictly increasing, got {list(bounds)}")
    return tuple(float(bound) for bound in bounds)


def _bucket_label(bound: float) -> str:
    return format(bound, "g")


class Histogram:
    """Distribution of observed values: exact count/sum/min/max and bucket counts,
    percentiles from a sample.

    Up to ``max_samples`` values are kept verbatim (percentiles are exact below that); beyond
    it a uniform reservoir sample of that size is kept. ``buckets`` are upper bounds: each
    value is counted in the first bucket whose bound it does not exceed (values above the
    last bound in ``"+Inf"``); ``()`` keeps no bucket counts. Not thread-safe on its own; the
    registry serialises access.

    Raises:
        ValueError: ``max_samples`` < 1, or ``buckets`` not finite and strictly increasing.
    """

    def __init__(
        self, max_samples: int = 10_000, seed: int = 0, buckets: Iterable[float] = DEFAULT_BUCKETS
    ) -> None:
        if max_samples < 1:
            raise ValueError(f"Histogram.max_samples must be >= 1, got {max_samples}")
        self.max_samples = max_samples
        self.buckets = check_buckets(buckets)
        self._bucket_counts = [0] * (len(self.buckets) + 1)
        self._rng = random.Random(seed)
        self._samples: list[float] = []
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    def observe(self, value: float) -> None:
        """Add one value."""
        value = float(value)
        self.count += 1
        self.sum += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)
        if self.buckets:
            self._bucket_counts[bisect.bisect_left(self.buckets, value)] += 1
        if len(self._samples) < self.max_samples:
            self._samples.append(value)
        else:
            slot = self._rng.randrange(self.count)
            if slot < self.max_samples:
                self._samples[slot] = value

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile (0-100) of the kept values; ``None`` when empty."""
        if not self._samples:
            return None
        return percentile(sorted(self._samples), q)

    def bucket_counts(self) -> dict[str, int]:
        """Cumulative counts per upper bound, as Prometheus reports them: ``{"0.001": n, ...,
        "+Inf": count}`` (values <= each bound); ``{}`` when the histogram keeps no buckets."""
        if not self.buckets:
            return {}
        cumulative = itertools.accumulate(self._bucket_counts)
        labels = [*map(_bucket_label, self.buckets), "+Inf"]
        return dict(zip(labels, cumulative, strict=True))

    def summary(self) -> dict[str, Any]:
        """``count``, ``sum``, ``mean``, ``min``, ``max``, ``p50``, ``p90``, ``p95``, ``p99``
        (``None`` when empty) and ``buckets`` (:meth:`bucket_counts`, when it keeps any)."""
        result: dict[str, Any] = {
            "count": self.count,
            "sum": self.sum,
            "mean": self.sum / self.count if self.count else None,
            "min": self.min if self.count else None,
            "max": self.max if self.count else None,
        }
        ordered = sorted(self._samples)
        for label, q in PERCENTILES:
            result[label] = percentile(ordered, q) if ordered else None
        if self.buckets:
            result["buckets"] = self.bucket_counts()
        return result


class _Endpoint:
    __slots__ = ("errors", "latency", "requests", "retries", "statuses")

    def __init__(self, max_samples: int, buckets: tuple[float, ...]) -> None:
        self.requests = 0
        self.errors = 0
        self.retries = 0
        self.statuses: dict[str, int] = {}
        self.latency = Histogram(max_samples, buckets=buckets)


def _number(measurements: Mapping[str, Any], key: str) -> float | None:
    value = measurements.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _check_settings(max_samples: int, buckets: Iterable[float]) -> tuple[int, tuple[float, ...]]:
    if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1:
        raise ValueError(f"MetricsRegistry max_samples must be an int >= 1, got {max_samples!r}")
    return max_samples, check_buckets(buckets)


class MetricsRegistry:
    """Thread-safe counters, gauges, histograms and per-endpoint HTTP latency.

    Feed it by hand (:meth:`increment`, :meth:`set_gauge`, :meth:`observe`) or let it listen
    to tinkex telemetry with :meth:`enable`. ``tinkex.http.request.stop`` events (``duration``
    in seconds, ``method``, ``path``, ``status``) become per-endpoint request counts, status
    counts and latency percentiles, keyed ``"METHOD /normalized/path"``.

    Every histogram keeps up to ``max_samples`` values for its percentiles and counts its
    values per bucket of ``buckets`` (upper bounds, in the unit observed: seconds for the
    latencies; ``()`` for none). :meth:`configure` changes both later.

    >>> registry = MetricsRegistry()
    >>> registry.observe("step.seconds", 1.5)
    >>> registry.snapshot()["histograms"]["step.seconds"]["p50"]
    1.5
    """

    def __init__(
        self,
        *,
        max_samples: int = 10_000,
        buckets: Iterable[float] = DEFAULT_BUCKETS,
        handler_id: str | None = None,
    ) -> None:
        self.max_samples, self.buckets = _check_settings(max_samples, buckets)
        self.handler_id = handler_id or f"tinkex.metrics.{id(self):x}"
        self._lock = threading.Lock()
        self._counters: dict[str, float] = {}
        self._gauges: dict[str, float] = {}
        self._histograms: dict[str, Histogram] = {}
        self._endpoints: dict[str, _Endpoint] = {}
        self._enabled = False

    # -- manual instruments -------------------------------------------------------------------

    def increment(self, name: str, value: float = 1.0) -> None:
        """Add ``value`` to counter ``name``."""
        with self._lock:
            self._counters[name] = self._counters.get(name, 0.0) + value

    def set_gauge(self, name: str, value: float) -> None:
        """Set gauge ``name`` to ``value``."""
        with self._lock:
            self._gauges[name] = float(value)

    def add_gauge(self, name: str, delta: float) -> None:
        """Move gauge ``name`` by ``delta`` (starting from 0)."""
        with self._lock:
            self._gauges[name] = self._gauges.get(name, 0.0) + delta

    def observe(self, name: str, value: float) -> None:
        """Record ``value`` in histogram ``name``."""
        with self._lock:
            self._histogram(name).observe(value)

    def counter(self, name: str) -> float:
        """Current value of counter ``name`` (0 if never incremented)."""
        with self._lock:
            return self._counters.get(name, 0.0)

    def gauge(self, name: str) -> float | None:
        """Current value of gauge ``name``, or ``None``."""
        with self._lock:
            return self._gauges.get(name)

    def histogram(self, name: str) -> dict[str, Any] | None:
        """Summary of histogram ``name``, or ``None``."""
        with self._lock:
            histogram = self._histograms.get(name)
            return None if histogram is None else histogram.summary()

    # -- export -------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything as plain data::

        {"counters": {name: value}, "gauges": {name: value},
         "histograms": {name: {count, sum, mean, min, max, p50, p90, p95, p99,
                               buckets: {"0.001": n, ..., "+Inf": count}}},
         "endpoints": {"POST /api/v1/forward": {"requests", "errors", "retries",
                       "statuses": {"200": n}, "latency": {count, ..., p99, buckets}}}}
        """
        with self._lock:
            return {
                "counters": dict(self._counters),
                "gauges": dict(self._gauges),
                "histograms": {name: h.summary() for name, h in self._histograms.items()},
                "endpoints": {
                    key: {
                        "requests": ep.requests,
                        "errors": ep.errors,
                        "retries": ep.retries,
                        "statuses": dict(ep.statuses),
                        "latency": ep.latency.summary(),
                    }
                    for key, ep in self._endpoints.items()
                },
            }

    def to_dict(self) -> dict[str, Any]:
        """Same as :meth:`snapshot`."""
        return self.snapshot()

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`snapshot` as JSON (``kwargs`` go to :func:`json.dumps`)."""
        kwargs.setdefault("sort_keys", True)
        return json.dumps(self.snapshot(), **kwargs)

    def configure(
        self, *, max_samples: int | None = None, buckets: Iterable[float] | None = None
    ) -> None:
        """Change the histograms' sample size and bucket bounds (``None``: keep).

        The histograms recorded so far are forgotten (they were kept under the old settings);
        counters and gauges stay.

        Raises:
            ValueError: ``max_samples`` < 1, or ``buckets`` not finite and strictly increasing.
        """
        new_max, new_buckets = _check_settings(
            self.max_samples if max_samples is None else max_samples,
            self.buckets if buckets is None else buckets,
        )
        with self._lock:
            self.max_samples, self.buckets = new_max, new_buckets
            self._histograms.clear()
            self._endpoints.clear()

    def reset(self) -> None:
        """Forget every value (the registry stays enabled if it was)."""
        with self._lock:
            self._counters.clear()
            self._gauges.clear()
            self._histograms.clear()
            self._endpoints.clear()

    # -- telemetry ---------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Whether the registry is attached to telemetry."""
        return self._enabled

    def enable(self, events: Iterable[str] = DEFAULT_EVENTS) -> MetricsRegistry:
        """Attach to telemetry ``events`` (idempotent); returns ``self``."""
        with self._lock:
            if self._enabled:
                return self
            self._enabled = True
        attach(self.handler_id, tuple(events), self.handle_event)
        return self

    def disable(self) -> bool:
        """Detach from telemetry; returns whether it was attached. Values are kept."""
        with self._lock:
            self._enabled = False
        return detach(self.handler_id)

    def __enter__(self) -> MetricsRegistry:
        return self.enable()

    def __exit__(self, *exc_info: object) -> None:
        self.disable()

    def handle_event(
        self, event: str, measurements: Mapping[str, float], metadata: Mapping[str, Any]
    ) -> None:
        """The telemetry handler: turn one event into metric updates.

        Payloads are read by the keys of their schema (``tinkex.telemetry.EVENT_SCHEMAS``);
        a key an emitter left out is simply not counted.
        """
        update = _UPDATES.get(event)
        with self._lock:
            self._bump(f"events.{event}")
            if update is not None:
                update(self, measurements, metadata)

    def _on_request_start(self, m: Mapping[str, float], md: Mapping[str, Any]) -> None:
        self._gauges["http.in_flight"] = self._gauges.get("http.in_flight", 0.0) + 1

    def _on_request_stop(self, m: Mapping[str, float], md: Mapping[str, Any]) -> None:
        meta = cast(HttpRequestStopMetadata, md)
        duration = _number(m, "duration")
        self._request_ended(failed=False)
        self._bump("http.request.duration_total", duration or 0.0)
        if duration is not None:
            self._histogram("http.request.duration").observe(duration)
        endpoint = self._endpoint(meta.get("method"), meta.get("path"))
        if endpoint is None:
            return
        endpoint.requests += 1
        status = meta.get("status")
        if status is not None:
            endpoint.statuses[str(status)] = endpoint.statuses.get(str(status), 0) + 1
            if isinstance(status, int) and status >= 400:
                endpoint.errors += 1
        if duration is not None:
            endpoint.latency.observe(duration)

    def _on_request_exception(self, m: Mapping[str, float], md: Mapping[str, Any]) -> None:
        meta = cast(HttpRequestExceptionMetadata, md)
        self._request_ended(failed=True)
        endpoint = self._endpoint(meta.get("method"), meta.get("path"))
        if endpoint is not None:
            endpoint.errors += 1

    def _on_retry(self, m: Mapping[str, float], md: Mapping[str, Any]) -> None:
        meta = cast(RetryMetadata, md)
        self._bump("http.retries")
        endpoint = self._endpoint(meta.get("method"), meta.get("path"))
        if endpoint is not None:
            endpoint.retries += 1

    def _on_queue_state(self, m: Mapping[str, float], md: Mapping[str, Any]) -> None:
        meta = cast(QueueStateMetadata, md)
        self._bump(f"future.queue_state.{meta.get('queue_state', 'unknown')}")

    def _on_future_complete(self, m: Mapping[str, float], md: Mapping[str, Any]) -> None:
        self._bump("future.completed")
        duration = _number(m, "duration")
        if duration is not None:
            self._histogram("future.duration").observe(duration)

    def _on_custom_loss(self, m: Mapping[str, float], md: Mapping[str, Any]) -> None:
        self._bump("custom_loss.computed")
        duration = _number(m, "duration")
        if duration is not None:
            self._histogram("custom_loss.duration").observe(duration)
        loss = _number(m, "loss_total")
        if loss is not None:
            self._gauges["custom_loss.loss_total"] = loss

    def _on_custom_loss_failure(self, m: Mapping[str, float], md: Mapping[str, Any]) -> None:
        self._bump("custom_loss.failed")

    def _on_regularizer_failure(self, m: Mapping[str, float], md: Mapping[str, Any]) -> None:
        meta = cast(RegularizerMetadata, md)
        self._bump(f"regularizer.{meta.get('name', 'unnamed')}.failed")

    def _on_regularizer(self, m: Mapping[str, float], md: Mapping[str, Any]) -> None:
        meta = cast(RegularizerMetadata, md)
        name = meta.get("name", "unnamed")
        duration = _number(m, "duration")
        if duration is not None:
            self._histogram(f"regularizer.{name}.duration").observe(duration)
        value = _number(m, "value")
        if value is not None:
            self._gauges[f"regularizer.{name}.value"] = value

    def _on_breaker(self, m: Mapping[str, float], md: Mapping[str, Any]) -> None:
        meta = cast(CircuitBreakerMetadata, md)
        name = meta.get("name", "default")
        state = meta.get("to", "unknown")
        self._bump(f"circuit_breaker.{state}")
        self._gauges[f"circuit_breaker.{name}.open"] = 1.0 if state == "open" else 0.0

    # -- internals (lock held) ---------------------------------------------------------------

    def _bump(self, name: str, value: float = 1.0) -> None:
        self._counters[name] = self._counters.get(name, 0.0) + value

    def _histogram(self, name: str) -> Histogram:
        histogram = self._histograms.get(name)
        if histogram is None:
            histogram = self._histograms[name] = Histogram(self.max_samples, buckets=self.buckets)
        return histogram

    def _endpoint(self, method: str | None, path: str | None) -> _Endpoint | None:
        if not isinstance(path, str):
            return None
        key = f"{str(method or '').upper()} {normalize_path(path)}".strip()
        endpoint = self._endpoints.get(key)
        if endpoint is None:
            endpoint = self._endpoints[key] = _Endpoint(self.max_samples, self.buckets)
        return endpoint

    def _request_ended(self, *, failed: bool) -> None:
        in_flight = self._gauges.get("http.in_flight", 0.0)
        self._gauges["http.in_flight"] = max(0.0, in_flight - 1)
        self._bump("http.exceptions" if failed else "http.requests")


_Update = Callable[[MetricsRegistry, Mapping[str, float], Mapping[str, Any]], None]

#: Event name -> how the registry updates itself from it (called with the lock held).
_UPDATES: dict[str, _Update] = {
    HTTP_REQUEST_START: MetricsRegistry._on_request_start,
    HTTP_REQUEST_STOP: MetricsRegistry._on_request_stop,
    HTTP_REQUEST_EXCEPTION: MetricsRegistry._on_request_exception,
    HTTP_RETRY: MetricsRegistry._on_retry,
    FUTURE_QUEUE_STATE: MetricsRegistry._on_queue_state,
    FUTURE_COMPLETE: MetricsRegistry._on_future_complete,
    CUSTOM_LOSS_STOP: MetricsRegistry._on_custom_loss,
    CUSTOM_LOSS_EXCEPTION: MetricsRegistry._on_custom_loss_failure,
    REGULARIZER_STOP: MetricsRegistry._on_regularizer,
    REGULARIZER_EXCEPTION: MetricsRegistry._on_regularizer_failure,
    CIRCUIT_BREAKER_STATE_CHANGE: MetricsRegistry._on_breaker,
}
