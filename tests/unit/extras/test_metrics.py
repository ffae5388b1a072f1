"""tinkex.metrics: percentiles, endpoint aggregation from telemetry, reset/export, threads."""

from __future__ import annotations

import json
import random
import threading

import numpy as np
import pytest

import tinkex.metrics
from tinkex import telemetry
from tinkex.metrics import Histogram, MetricsRegistry, normalize_path, percentile


def stop_event(path: str, duration: float, status: int = 200, method: str = "POST") -> None:
    telemetry.emit(
        telemetry.HTTP_REQUEST_STOP,
        {"duration": duration},
        {"method": method, "path": path, "status": status},
    )


def test_percentiles_of_one_to_hundred() -> None:
    hist = Histogram()
    for value in range(1, 101):
        hist.observe(value)
    summary = hist.summary()
    assert summary["p50"] == pytest.approx(50.5)
    assert summary["p90"] == pytest.approx(90.1)
    assert summary["p95"] == pytest.approx(95.05)
    assert summary["p99"] == pytest.approx(99.01)
    assert (summary["min"], summary["max"], summary["count"]) == (1.0, 100.0, 100)
    assert summary["mean"] == pytest.approx(50.5)


def test_percentiles_match_numpy_on_random_distribution() -> None:
    rng = random.Random(42)
    values = [rng.lognormvariate(-3, 0.7) for _ in range(5000)]
    hist = Histogram()
    for value in values:
        hist.observe(value)
    for q in (50, 90, 99):
        assert hist.percentile(q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12)


def test_reservoir_percentiles_approximate_known_distribution() -> None:
    rng = random.Random(7)
    hist = Histogram(max_samples=2000)
    for _ in range(50_000):
        hist.observe(rng.uniform(0.0, 1.0))
    assert hist.count == 50_000
    assert hist.percentile(50) == pytest.approx(0.5, abs=0.04)
    assert hist.percentile(90) == pytest.approx(0.9, abs=0.03)
    assert hist.percentile(99) == pytest.approx(0.99, abs=0.01)


def test_percentile_helper_validates() -> None:
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)
    with pytest.raises(ValueError, match="q"):
        percentile([1.0], 101)
    assert Histogram().percentile(50) is None
    assert Histogram().summary()["count"] == 0


def test_endpoint_latency_from_telemetry() -> None:
    registry = MetricsRegistry().enable()
    try:
        for ms in range(1, 101):
            stop_event("/api/v1/forward_backward", ms / 1000)
        stop_event("/api/v1/asample", 0.2, status=429)
        telemetry.emit(
            telemetry.HTTP_RETRY, {"attempt": 1.0}, {"method": "POST", "path": "/api/v1/asample"}
        )
        # a retry event as the retry loop emits it (schema: telemetry.RetryMetadata)
        telemetry.emit(
            telemetry.HTTP_RETRY,
            {"attempt": 2.0, "delay": 0.5},
            {
                "policy": "http",
                "request": "POST /api/v1/asample",
                "method": "POST",
                "path": "/api/v1/asample",
                "error": "RateLimitError",
                "status": 429,
            },
        )
        telemetry.emit(
            telemetry.HTTP_REQUEST_EXCEPTION,
            {"duration": 1.0},
            {"method": "POST", "path": "/api/v1/asample"},
        )
    finally:
        registry.disable()
    stop_event("/api/v1/forward_backward", 99.0)  # after disable: ignored
    snap = registry.snapshot()
    fwd = snap["endpoints"]["POST /api/v1/forward_backward"]
    assert fwd["requests"] == 100 and fwd["errors"] == 0 and fwd["statuses"] == {"200": 100}
    assert fwd["latency"]["p50"] == pytest.approx(0.0505)
    assert fwd["latency"]["p90"] == pytest.approx(0.0901)
    assert fwd["latency"]["p95"] == pytest.approx(0.09505)
    assert fwd["latency"]["p99"] == pytest.approx(0.09901)
    assert fwd["latency"]["max"] == pytest.approx(0.1)
    sample = snap["endpoints"]["POST /api/v1/asample"]
    assert sample["errors"] == 2 and sample["retries"] == 2 and sample["statuses"] == {"429": 1}
    assert snap["counters"]["http.requests"] == 101
    assert snap["counters"]["http.retries"] == 2 and snap["counters"]["http.exceptions"] == 1
    assert snap["histograms"]["http.request.duration"]["count"] == 101


def test_in_flight_gauge_and_other_events() -> None:
    registry = MetricsRegistry()
    with registry:
        telemetry.emit(telemetry.HTTP_REQUEST_START, {}, {"method": "GET", "path": "/x"})
        telemetry.emit(telemetry.HTTP_REQUEST_START, {}, {"method": "GET", "path": "/x"})
        assert registry.gauge("http.in_flight") == 2
        stop_event("/x", 0.1, method="GET")
        assert registry.gauge("http.in_flight") == 1
        telemetry.emit(telemetry.FUTURE_QUEUE_STATE, {}, {"queue_state": "paused_capacity"})
        telemetry.emit(telemetry.FUTURE_COMPLETE, {"duration": 2.0}, {"request_id": "r"})
        telemetry.emit(telemetry.CUSTOM_LOSS_STOP, {"duration": 0.5, "loss_total": 3.0}, {})
        telemetry.emit(telemetry.CUSTOM_LOSS_EXCEPTION, {"duration": 0.5}, {})
        telemetry.emit(telemetry.REGULARIZER_STOP, {"duration": 0.1, "value": 0.2}, {"name": "l1"})
        telemetry.emit(telemetry.REGULARIZER_EXCEPTION, {"duration": 0.1}, {"name": "kl"})
        telemetry.emit(telemetry.CIRCUIT_BREAKER_STATE_CHANGE, {}, {"name": "ep", "to": "open"})
    snap = registry.snapshot()
    assert snap["counters"]["future.queue_state.paused_capacity"] == 1
    assert snap["counters"]["future.completed"] == 1
    assert snap["histograms"]["future.duration"]["p50"] == 2.0
    assert snap["gauges"]["custom_loss.loss_total"] == 3.0
    assert snap["gauges"]["regularizer.l1.value"] == 0.2
    assert snap["histograms"]["regularizer.l1.duration"]["max"] == 0.1
    assert snap["counters"]["custom_loss.failed"] == 1
    assert snap["counters"]["regularizer.kl.failed"] == 1
    assert snap["gauges"]["circuit_breaker.ep.open"] == 1.0
    assert snap["counters"][f"events.{telemetry.HTTP_REQUEST_START}"] == 2
    assert not registry.enabled


def test_path_normalization_groups_ids() -> None:
    assert (
        normalize_path("/api/v1/sessions/3f2a:train:0/finish?x=1") == "/api/v1/sessions/{id}/finish"
    )
    assert normalize_path("/api/v1/runs/123") == "/api/v1/runs/{id}"
    assert normalize_path("/api/v1/x/0b7c2f1e-8a9d-4d1e-9c3b-1234567890ab") == "/api/v1/x/{id}"
    assert normalize_path("/api/v1/get_info") == "/api/v1/get_info"


def test_manual_instruments_reset_and_json() -> None:
    registry = MetricsRegistry()
    registry.increment("steps")
    registry.increment("steps", 2)
    registry.set_gauge("lr", 1e-4)
    registry.add_gauge("queue", 3)
    registry.add_gauge("queue", -1)
    registry.observe("step.seconds", 1.0)
    assert registry.counter("steps") == 3 and registry.gauge("queue") == 2
    exported = json.loads(registry.to_json())
    assert exported["counters"]["steps"] == 3
    assert exported["histograms"]["step.seconds"]["p99"] == 1.0
    assert registry.to_dict() == registry.snapshot()
    registry.reset()
    assert registry.snapshot() == {"counters": {}, "gauges": {}, "histograms": {}, "endpoints": {}}
    assert registry.histogram("step.seconds") is None


def test_module_level_default_registry() -> None:
    tinkex.metrics.reset()
    assert tinkex.metrics.enable() is tinkex.metrics.default_registry()
    assert tinkex.metrics.enable() is tinkex.metrics.default_registry()  # idempotent
    try:
        stop_event("/api/v1/get_info", 0.01)
    finally:
        assert tinkex.metrics.disable() is True
    assert tinkex.metrics.disable() is False
    assert tinkex.metrics.snapshot()["endpoints"]["POST /api/v1/get_info"]["requests"] == 1
    tinkex.metrics.increment("manual")
    assert json.loads(tinkex.metrics.to_json())["counters"]["manual"] == 1
    tinkex.metrics.reset()
    assert tinkex.metrics.to_dict()["counters"] == {}


def test_thread_safety() -> None:
    registry = MetricsRegistry().enable()
    try:

        def work() -> None:
            for _ in range(1000):
                stop_event("/api/v1/forward", 0.001)
                registry.increment("manual")

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        registry.disable()
    snap = registry.snapshot()
    assert snap["endpoints"]["POST /api/v1/forward"]["requests"] == 8000
    assert snap["counters"]["manual"] == 8000


def test_with_retry_retries_are_attributed_to_the_named_endpoint() -> None:
    from tinkex.resilience import BackoffPolicy, with_retry

    outcomes: list[Exception | str] = [ConnectionError("x"), "ok"]

    def call() -> str:
        item = outcomes.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    with MetricsRegistry() as registry:
        with_retry(
            call, BackoffPolicy(base_delay=0), name="POST /api/v1/asample", sleep=lambda s: None
        )
    assert registry.snapshot()["endpoints"]["POST /api/v1/asample"]["retries"] == 1


def test_bucket_counts_are_cumulative_per_upper_bound() -> None:
    hist = Histogram(buckets=[0.01, 0.1, 1.0])
    for value in (0.005, 0.01, 0.05, 0.1, 0.5, 2.0, 7.0):
        hist.observe(value)
    # A value equal to a bound is counted in that bound's bucket ("<=").
    assert hist.bucket_counts() == {"0.01": 2, "0.1": 4, "1": 5, "+Inf": 7}
    assert hist.summary()["buckets"] == hist.bucket_counts()
    default = Histogram()
    default.observe(0.003)
    assert default.buckets == tinkex.metrics.DEFAULT_BUCKETS
    assert default.bucket_counts()["0.002"] == 0 and default.bucket_counts()["0.005"] == 1
    none = Histogram(buckets=())
    none.observe(1.0)
    assert none.bucket_counts() == {} and "buckets" not in none.summary()
    empty = Histogram().summary()
    assert empty["p95"] is None and set(empty["buckets"].values()) == {0}


@pytest.mark.parametrize(
    ("buckets", "message"),
    [
        ([0.1, 0.1], "strictly increasing, got \\[0.1, 0.1\\]"),
        ([1.0, 0.5], "strictly increasing"),
        ([0.1, float("inf")], "finite numbers, got inf"),
        (["0.1"], "finite numbers, got '0.1'"),
    ],
)
def test_bad_buckets_are_rejected_with_the_value(buckets: list[object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Histogram(buckets=buckets)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        MetricsRegistry(buckets=buckets)  # type: ignore[arg-type]


def test_registry_buckets_apply_to_endpoint_latency_and_configure_changes_them() -> None:
    registry = MetricsRegistry(buckets=[0.05, 0.5], max_samples=3).enable()
    try:
        for duration in (0.01, 0.2, 0.3, 0.9):
            stop_event("/api/v1/asample", duration)
        latency = registry.snapshot()["endpoints"]["POST /api/v1/asample"]["latency"]
        assert latency["buckets"] == {"0.05": 1, "0.5": 3, "+Inf": 4}
        assert latency["count"] == 4  # exact, though only 3 samples are kept
        registry.increment("steps")
        registry.configure(buckets=[1.0])
        assert registry.max_samples == 3 and registry.buckets == (1.0,)
        snap = registry.snapshot()
        assert snap["endpoints"] == {} and snap["histograms"] == {}  # recorded under old bounds
        assert snap["counters"]["steps"] == 1
        stop_event("/api/v1/asample", 0.2)
        latency = registry.snapshot()["endpoints"]["POST /api/v1/asample"]["latency"]
        assert latency["buckets"] == {"1": 1, "+Inf": 1}
        with pytest.raises(ValueError, match="max_samples must be an int >= 1, got 0"):
            registry.configure(max_samples=0)
        assert registry.max_samples == 3  # a rejected change changes nothing
    finally:
        registry.disable()
    assert json.loads(registry.to_json())["endpoints"]["POST /api/v1/asample"]["latency"][
        "buckets"
    ] == {"1": 1, "+Inf": 1}


def test_module_level_configure_sets_the_default_registry() -> None:
    default = tinkex.metrics.default_registry()
    try:
        tinkex.metrics.configure(buckets=[0.25], max_samples=7)
        tinkex.metrics.observe("step.seconds", 0.1)
        assert tinkex.metrics.snapshot()["histograms"]["step.seconds"]["buckets"] == {
            "0.25": 1,
            "+Inf": 1,
        }
        assert default.max_samples == 7
    finally:
        tinkex.metrics.configure(buckets=tinkex.metrics.DEFAULT_BUCKETS, max_samples=10_000)
        tinkex.metrics.reset()
