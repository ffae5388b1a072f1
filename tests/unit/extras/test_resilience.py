"""Circuit breakers and with_retry."""

from __future__ import annotations

import pickle
import random
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from tinkex import TinkerError, telemetry
from tinkex._exceptions import BadRequestError, InternalServerError, RateLimitError
from tinkex.resilience import (
    BackoffPolicy,
    CircuitBreaker,
    CircuitBreakerRegistry,
    CircuitOpenError,
    CircuitState,
    with_retry,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail() -> None:
    raise ConnectionError("down")


def test_breaker_opens_after_n_failures_and_half_opens_after_timeout(
    events: list[tuple[str, Mapping[str, float], Mapping[str, Any]]],
) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(
        "POST /api/v1/asample", failure_threshold=3, reset_timeout=10, clock=clock
    )
    for _ in range(2):
        with pytest.raises(ConnectionError):
            breaker.call(fail)
    assert breaker.state is CircuitState.CLOSED
    with pytest.raises(ConnectionError):
        breaker.call(fail)
    assert breaker.state is CircuitState.OPEN

    ran: list[int] = []
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(lambda: ran.append(1))
    assert ran == []  # rejected without running
    assert isinstance(info.value, TinkerError)
    assert info.value.retry_after == pytest.approx(10.0)
    assert "POST /api/v1/asample" in str(info.value) and "3 consecutive failures" in str(info.value)

    clock.now += 9.9
    assert breaker.state is CircuitState.OPEN
    assert breaker.retry_after() == pytest.approx(0.1)
    clock.now += 0.1
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.call(lambda: "probe ok") == "probe ok"
    assert breaker.state is CircuitState.CLOSED
    assert breaker.failure_count == 0

    transitions = [
        (md["from"], md["to"]) for e, _, md in events if e == telemetry.CIRCUIT_BREAKER_STATE_CHANGE
    ]
    assert transitions == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_failed_probe_reopens() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=5, clock=clock)
    with pytest.raises(ConnectionError):
        breaker.call(fail)
    clock.now += 5
    assert breaker.state is CircuitState.HALF_OPEN
    with pytest.raises(ConnectionError):
        breaker.call(fail)
    assert breaker.state is CircuitState.OPEN
    assert breaker.retry_after() == pytest.approx(5.0)  # timer restarted


def test_half_open_admits_limited_probes() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(
        failure_threshold=1, reset_timeout=1, half_open_max_calls=1, clock=clock
    )
    with pytest.raises(ConnectionError):
        breaker.call(fail)
    clock.now += 1
    breaker.acquire()  # the one probe slot
    with pytest.raises(CircuitOpenError) as info:
        breaker.acquire()
    assert info.value.retry_after == 0.0
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED


def test_success_threshold_needs_several_probes() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(
        failure_threshold=1,
        reset_timeout=1,
        half_open_max_calls=2,
        success_threshold=2,
        clock=clock,
    )
    with pytest.raises(ConnectionError):
        breaker.call(fail)
    clock.now += 1
    breaker.call(lambda: None)
    assert breaker.state is CircuitState.HALF_OPEN
    breaker.call(lambda: None)
    assert breaker.state is CircuitState.CLOSED


def test_success_resets_consecutive_failures() -> None:
    breaker = CircuitBreaker(failure_threshold=2, clock=FakeClock())
    with pytest.raises(ConnectionError):
        breaker.call(fail)
    breaker.call(lambda: None)
    with pytest.raises(ConnectionError):
        breaker.call(fail)
    assert breaker.state is CircuitState.CLOSED


def test_client_errors_do_not_trip_the_breaker() -> None:
    breaker = CircuitBreaker(failure_threshold=1, clock=FakeClock())

    def bad_request() -> None:
        raise BadRequestError("bad", status_code=400)

    for _ in range(3):
        with pytest.raises(BadRequestError):
            breaker.call(bad_request)
    assert breaker.state is CircuitState.CLOSED

    def rate_limited() -> None:
        raise RateLimitError("slow down", status_code=429)

    with pytest.raises(RateLimitError):
        breaker.call(rate_limited)
    assert breaker.state is CircuitState.OPEN


def test_context_manager() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=1, clock=clock)
    with pytest.raises(ConnectionError), breaker:
        raise ConnectionError("x")
    with pytest.raises(CircuitOpenError), breaker:
        pass
    clock.now += 1
    with breaker:
        pass
    assert breaker.state is CircuitState.CLOSED


def test_reset_and_validation() -> None:
    breaker = CircuitBreaker(failure_threshold=1, clock=FakeClock())
    with pytest.raises(ConnectionError):
        breaker.call(fail)
    breaker.reset()
    assert breaker.state is CircuitState.CLOSED
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker(failure_threshold=0)
    with pytest.raises(ValueError, match="reset_timeout"):
        CircuitBreaker(reset_timeout=-1)


def test_circuit_open_error_pickles() -> None:
    error = pickle.loads(pickle.dumps(CircuitOpenError("ep", 3.0, 5)))
    assert (error.name, error.retry_after, error.failures) == ("ep", 3.0, 5)
    assert "ep" in str(error)


def test_breaker_is_thread_safe() -> None:
    breaker = CircuitBreaker(failure_threshold=10_000, clock=FakeClock())

    def hammer() -> None:
        for _ in range(500):
            try:
                breaker.call(fail)
            except ConnectionError:
                pass

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert breaker.failure_count == 4000


def test_registry_per_endpoint() -> None:
    clock = FakeClock()
    registry = CircuitBreakerRegistry(failure_threshold=1, reset_timeout=5, clock=clock)
    with pytest.raises(ConnectionError):
        registry.call("POST /api/v1/asample", fail)
    assert registry.call("POST /api/v1/forward", lambda: 7) == 7
    assert registry.states() == {
        "POST /api/v1/asample": CircuitState.OPEN,
        "POST /api/v1/forward": CircuitState.CLOSED,
    }
    assert registry.get("POST /api/v1/asample") is registry.get("POST /api/v1/asample")
    assert "POST /api/v1/forward" in registry and len(registry) == 2
    registry.reset()
    assert set(registry.states().values()) == {CircuitState.CLOSED}
    assert registry.remove("POST /api/v1/forward") and not registry.remove("nope")
    with pytest.raises(ValueError):
        CircuitBreakerRegistry(failure_threshold=0)


def test_with_retry_retries_then_succeeds_and_emits_telemetry(
    events: list[tuple[str, Mapping[str, float], Mapping[str, Any]]],
) -> None:
    outcomes: list[Exception | str] = [
        ConnectionError("a"),
        InternalServerError("b", status_code=503),
        "done",
    ]
    sleeps: list[float] = []

    def call() -> str:
        item = outcomes.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    policy = BackoffPolicy(max_attempts=5, base_delay=0.5, jitter=0)
    assert with_retry(call, policy, name="get_info", sleep=sleeps.append) == "done"
    assert sleeps == [0.5, 1.0]
    retries = [(m, md) for e, m, md in events if e == telemetry.HTTP_RETRY]
    assert [m["attempt"] for m, _ in retries] == [1.0, 2.0]
    assert [m["delay"] for m, _ in retries] == [0.5, 1.0]
    assert retries[1][1]["error_type"] == "InternalServerError"
    assert retries[0][1]["name"] == "get_info" and retries[0][1]["retry_count"] == 1


def test_with_retry_emits_attempt_start_stop_and_failed(
    events: list[tuple[str, Mapping[str, float], Mapping[str, Any]]],
) -> None:
    from tinkex.resilience import RetryPolicy

    outcomes: list[Exception | str] = [InternalServerError("b", status_code=503), "done"]

    def call() -> str:
        item = outcomes.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    policy = RetryPolicy(name="test", max_retries=1, backoff_initial=0, jitter=0)
    assert with_retry(call, policy, name="POST /api/v1/x", sleep=lambda s: None) == "done"
    names = [e.removeprefix("tinkex.") for e, _, _ in events]
    assert names == [
        "retry.attempt.start",
        "http.retry",
        "retry.attempt.start",
        "retry.attempt.stop",
    ]
    starts = [md for e, _, md in events if e == telemetry.RETRY_ATTEMPT_START]
    assert [md["attempt"] for md in starts] == [0, 1]
    (stop,) = [(m, md) for e, m, md in events if e == telemetry.RETRY_ATTEMPT_STOP]
    assert stop[1] == {"policy": policy.name, "request": "POST /api/v1/x", "attempt": 1}
    assert stop[0]["duration"] >= 0

    for failure, reason in (
        (InternalServerError("b", status_code=503), "exhausted"),
        (BadRequestError("no", status_code=400), "not_retryable"),
    ):
        events.clear()
        outcomes[:] = [failure, failure]
        with pytest.raises(type(failure)):
            with_retry(call, policy, name="POST /api/v1/x", sleep=lambda s: None)
        (failed,) = [md for e, _, md in events if e == telemetry.RETRY_ATTEMPT_FAILED]
        assert failed["reason"] == reason and failed["error"] == type(failure).__name__
        assert failed["status"] == failure.status_code
        assert telemetry.RETRY_ATTEMPT_STOP not in [e for e, _, _ in events]


def test_with_retry_gives_up_and_reraises() -> None:
    calls = []

    def call() -> None:
        calls.append(1)
        raise ConnectionError(f"attempt {len(calls)}")

    with pytest.raises(ConnectionError, match="attempt 3"):
        with_retry(call, BackoffPolicy(max_attempts=3, base_delay=0), sleep=lambda s: None)
    assert len(calls) == 3


def test_with_retry_does_not_retry_permanent_errors() -> None:
    calls = []

    def call() -> None:
        calls.append(1)
        raise BadRequestError("bad", status_code=400)

    with pytest.raises(BadRequestError):
        with_retry(call, BackoffPolicy(max_attempts=5), sleep=lambda s: None)
    assert len(calls) == 1


def test_backoff_delay_curve_and_jitter() -> None:
    policy = BackoffPolicy(base_delay=0.5, max_delay=10, jitter=0.25)
    rng = random.Random(0)
    for n in range(8):
        base = min(0.5 * 2**n, 10)
        assert base * 0.75 <= policy.delay(n, rng) <= base * 1.25
    assert BackoffPolicy(jitter=0).delay(10) == 10.0
    with pytest.raises(ValueError, match="jitter"):
        BackoffPolicy(jitter=2)
    with pytest.raises(ValueError, match="max_attempts"):
        BackoffPolicy(max_attempts=0)


def test_with_retry_stops_at_open_breaker() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout=30, clock=clock)
    calls = []

    def call() -> None:
        calls.append(1)
        raise ConnectionError("down")

    with pytest.raises(CircuitOpenError):
        with_retry(
            call,
            BackoffPolicy(max_attempts=10, base_delay=0),
            breaker=breaker,
            sleep=lambda s: None,
        )
    assert len(calls) == 2


def test_with_retry_accepts_a_retry_config_like_object() -> None:
    class RetryConfigLike:
        retry_delay_base = 0.1
        retry_delay_max = 0.2
        jitter_factor = 0.0
        retryable_exceptions = (KeyError,)
        progress_timeout = 60.0
        enable_retry_logic = True

    policy = BackoffPolicy.from_retry_config(RetryConfigLike())
    assert policy.max_attempts is None and policy.timeout == 60.0
    outcomes: list[Exception | int] = [KeyError("x"), KeyError("y"), 5]
    sleeps: list[float] = []

    def call() -> int:
        item = outcomes.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    assert with_retry(call, RetryConfigLike(), sleep=sleeps.append) == 5
    assert sleeps == [0.1, 0.2]
    with pytest.raises(TypeError, match="BackoffPolicy"):
        with_retry(lambda: 1, object())


def test_backoff_policy_is_a_deprecated_retry_policy() -> None:
    from tinkex.resilience import RetryPolicy, default_retry_policy

    with pytest.warns(DeprecationWarning, match="BackoffPolicy is deprecated"):
        old = BackoffPolicy(max_attempts=3, base_delay=0.2, max_delay=1.0, timeout=9.0)
    assert isinstance(old, RetryPolicy)
    assert (old.max_retries, old.backoff_initial, old.backoff_max, old.max_elapsed) == (
        2,
        0.2,
        1.0,
        9.0,
    )
    assert (old.max_attempts, old.base_delay, old.max_delay, old.timeout) == (3, 0.2, 1.0, 9.0)
    assert repr(old).startswith("BackoffPolicy(name='with_retry', max_retries=2")
    # the same rules as the policy with_retry uses by default
    assert default_retry_policy().is_retryable(ConnectionError("x"))
    assert default_retry_policy().max_retries == 3


def test_with_retry_takes_a_retry_policy_and_never_retries_an_open_circuit() -> None:
    from tinkex.resilience import RetryPolicy

    policy = RetryPolicy(name="mine", max_retries=5, retry_if=lambda exc: True, jitter=0)
    calls: list[int] = []

    def rejected() -> None:
        calls.append(1)
        raise CircuitOpenError("ep", 1.0, 3)

    with pytest.raises(CircuitOpenError):
        with_retry(rejected, policy, sleep=lambda s: None)
    assert calls == [1]
    outcomes: list[Exception | str] = [KeyError("x"), "ok"]

    def flaky() -> str:
        item = outcomes.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    assert with_retry(flaky, policy, sleep=lambda s: None) == "ok"
