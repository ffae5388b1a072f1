"""RetryPolicy.decide, row by row, and the loop and named policies built on it."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tinkex._exceptions import (
    APIConnectionError,
    APITimeoutError,
    BillingError,
    InternalServerError,
    RateLimitError,
    RetryableException,
    make_status_error,
)
from tinkex._transport.retry import (
    RetryDecision,
    RetryPolicy,
    RetryState,
    holder_retry_policy,
    poll_retry_policy,
    sample_submission_policy,
)
from tinkex.lib.retry_handler import RetryConfig

from .conftest import FakeClock


def status(code: int, body: object = None, headers: dict[str, str] | None = None) -> Any:
    class R:
        pass

    r = R()
    r.headers = headers or {}  # type: ignore[attr-defined]
    return make_status_error(code, body if body is not None else {"d": 1}, response=r)


POLICY = RetryPolicy(name="t", max_retries=3, backoff_initial=1.0, backoff_max=4.0, jitter=0.0)


# ---- one row per outcome ------------------------------------------------------------------


def test_retryable_failure_retries_after_the_backoff_and_counts() -> None:
    decision = POLICY.decide(status(503), RetryState(), now=0.0)
    assert decision == RetryDecision(True, 1.0, RetryState(retries=1), "retry")
    second = POLICY.decide(APIConnectionError(), decision.state, now=1.0)
    assert (second.retry, second.delay, second.state.retries) == (True, 2.0, 2)
    capped = POLICY.decide(status(429), RetryState(retries=2), now=0.0)
    assert capped.delay == 4.0  # min(1 * 2**2, 4)


def test_non_retryable_failure_stops() -> None:
    for exc in (status(404), ValueError("bug"), status(402)):
        decision = POLICY.decide(exc, RetryState(), now=0.0)
        assert (decision.retry, decision.reason, decision.exhausted) == (
            False,
            "not_retryable",
            False,
        )


def test_attempt_budget_is_exhausted_after_max_retries() -> None:
    decision = POLICY.decide(status(500), RetryState(retries=3), now=0.0)
    assert (decision.retry, decision.reason, decision.exhausted) == (False, "exhausted", True)


def test_time_budget_clips_the_wait_then_is_exhausted() -> None:
    policy = RetryPolicy(
        name="t", max_retries=None, max_elapsed=10.0, backoff_initial=8.0, jitter=0.0
    )
    first = policy.decide(status(503), RetryState(started=100.0), now=107.0)
    assert first.retry and first.delay == pytest.approx(3.0)  # 8 s clipped to what is left
    assert not policy.decide(status(503), first.state, now=110.0).retry


def test_billing_pauses_without_counting_until_the_window_ends() -> None:
    policy = holder_retry_policy(billing_max_pause=12.0)
    state = RetryState(retries=2)
    first = policy.decide(status(402), state, now=0.0)
    assert first == RetryDecision(True, 5.0, RetryState(retries=2, billing_since=0.0), "billing")
    second = policy.decide(BillingError("pay", status_code=402), first.state, now=10.0)
    assert second.retry and second.state.billing_since == 0.0
    ended = policy.decide(status(402), second.state, now=12.0)
    assert (ended.retry, ended.reason) == (False, "exhausted")
    # any other failure ends the run of 402s
    other = policy.decide(status(503), second.state, now=11.0)
    assert other.state.billing_since is None and other.state.retries == 3


def test_never_retry_beats_every_other_rule() -> None:
    policy = RetryPolicy(
        name="t",
        retry_exceptions=(KeyError,),
        retry_if=lambda exc: True,
        never_retry=(LookupError,),
    )
    assert not policy.is_retryable(KeyError("x"))
    assert policy.is_retryable(ValueError("retry_if says yes"))


def test_retry_if_rescues_but_x_should_retry_false_is_final() -> None:
    policy = RetryPolicy(name="t", honor_should_retry=True, retry_if=lambda exc: True)
    assert policy.is_retryable(status(404))
    assert not policy.is_retryable(status(503, headers={"x-should-retry": "false"}))


def test_retry_exceptions_do_not_decide_status_errors() -> None:
    policy = RetryPolicy(name="t", retry_exceptions=(Exception,), retry_connection_errors=False)
    assert policy.is_retryable(KeyError("x"))
    assert not policy.is_retryable(status(400))
    assert policy.is_retryable(APITimeoutError())  # an Exception too


def test_retry_after_wins_when_honoured() -> None:
    policy = RetryPolicy(name="t", honor_retry_after=True, jitter=0.0)
    exc = status(503, headers={"retry-after": "7"})
    assert policy.decide(exc, RetryState(), now=0.0).delay == 7.0
    assert RetryPolicy(name="t", jitter=0.0).decide(exc, RetryState(), now=0.0).delay == 0.5


def test_jitter_ranges() -> None:
    rng = random.Random(1)
    down = RetryPolicy(name="t", backoff_initial=1.0, jitter=0.5)
    both = RetryPolicy(name="t", backoff_initial=1.0, jitter=0.5, symmetric_jitter=True)
    downs = [down.retry_delay(None, 0, rng) for _ in range(200)]
    boths = [both.retry_delay(None, 0, rng) for _ in range(200)]
    assert min(downs) >= 0.5 and max(downs) <= 1.0
    assert min(boths) >= 0.5 and max(boths) <= 1.5 and max(boths) > 1.0
    assert "U(0.5, 1.5)" in repr(both.wait)


def test_invalid_fields_name_the_field_and_value() -> None:
    with pytest.raises(ValueError, match=r"RetryPolicy.jitter must be in \[0, 1\], got 1.5"):
        RetryPolicy(name="t", jitter=1.5)
    with pytest.raises(ValueError, match=r"RetryPolicy\.max_retries must be >= 0, got -1"):
        RetryPolicy(name="t", max_retries=-1)
    with pytest.raises(ValueError, match=r"RetryPolicy\.backoff_initial must be >= 0"):
        RetryPolicy(name="t", backoff_initial=-0.1)


# ---- the loop ----------------------------------------------------------------------------


def test_run_raises_give_up_error_only_when_the_budget_is_spent(clock: FakeClock) -> None:
    policy = RetryPolicy(name="t", max_retries=2, jitter=0.0)

    def stuck(exc: BaseException) -> BaseException:
        return TimeoutError(f"gave up after {exc}")

    def always_503() -> None:
        raise InternalServerError("busy", status_code=503)

    with pytest.raises(TimeoutError, match="gave up after busy") as info:
        policy.run(always_503, sleep=clock.sleep, clock=clock, give_up=stuck)
    assert isinstance(info.value.__cause__, InternalServerError)
    assert clock.sleeps == [0.5, 1.0]

    def not_found() -> None:
        raise status(404)

    with pytest.raises(Exception, match="404") as other:
        policy.run(not_found, sleep=clock.sleep, clock=clock, give_up=stuck)
    assert not isinstance(other.value, TimeoutError)


def test_run_event_extra_and_no_event(
    clock: FakeClock, events: list[tuple[str, dict[str, Any], dict[str, Any]]]
) -> None:
    outcomes: list[BaseException | str] = [RateLimitError("slow", status_code=429), "ok"]

    def attempt() -> str:
        item = outcomes.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    extra = {"label": "mine"}
    policy = RetryPolicy(name="t", jitter=0.0)
    assert policy.run(attempt, sleep=clock.sleep, event_extra=lambda e, n: extra) == "ok"
    ((name, measurements, metadata),) = events
    assert name == "tinkex.http.retry" and measurements == {"delay": 0.5, "attempt": 1.0}
    assert metadata["label"] == "mine" and metadata["request"] is None
    assert metadata["method"] is None and metadata["path"] is None

    events.clear()
    outcomes[:] = [RateLimitError("slow", status_code=429), "ok"]
    assert policy.run(attempt, sleep=clock.sleep, event=None) == "ok"
    assert events == []


def test_billing_pauses_emit_no_retry_event(
    clock: FakeClock, events: list[tuple[str, dict[str, Any], dict[str, Any]]]
) -> None:
    outcomes: list[BaseException | str] = [status(402), "ok"]

    def attempt() -> str:
        item = outcomes.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    assert holder_retry_policy().run(attempt, sleep=clock.sleep, clock=clock) == "ok"
    assert clock.sleeps == [5.0] and events == []


# ---- the named policies ------------------------------------------------------------------


def test_poll_policy_backs_off_429_and_connection_errors_only() -> None:
    policy = poll_retry_policy(60.0)
    state = RetryState()
    delays = []
    for _ in range(7):
        decision = policy.decide(APIConnectionError(), state, now=0.0)
        delays.append(decision.delay)
        state = decision.state
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert policy.decide(status(429), RetryState(), now=0.0).delay == 1.0
    assert not policy.is_retryable(status(503))  # the poller re-polls 5xx itself, at once
    assert policy.decide(status(402), RetryState(), now=0.0).reason == "billing"
    assert poll_retry_policy(60.0) is poll_retry_policy(60.0)


def test_sample_submission_policy_resends_429_at_once_and_pauses_402() -> None:
    policy = sample_submission_policy(30.0, billing_pause=0.5)
    assert policy.decide(status(429), RetryState(), now=0.0) == RetryDecision(
        True, 0.0, RetryState(retries=1), "retry"
    )
    assert policy.decide(status(402), RetryState(), now=0.0).delay == 0.5
    for exc in (status(503), APIConnectionError(), RetryableException("gone")):
        assert not policy.is_retryable(exc)  # the RetryConfig policy resubmits these


def test_retry_config_policy() -> None:
    config = RetryConfig(retry_delay_base=0.25, retry_delay_max=2.0, jitter_factor=0.1)
    policy = RetryPolicy.from_retry_config(config)
    assert (policy.max_retries, policy.max_elapsed) == (None, 7200.0)
    assert (policy.backoff_initial, policy.backoff_max) == (0.25, 2.0)
    assert policy.jitter == 0.1 and policy.symmetric_jitter
    for exc in (status(409), status(502), APIConnectionError(), RetryableException("gone")):
        assert policy.is_retryable(exc)
    assert not policy.is_retryable(status(400))
    assert RetryPolicy.from_retry_config(config, enabled=False).max_retries == 0
    assert RetryPolicy.from_retry_config(RetryConfig(enable_retry_logic=False)).max_retries == 0
    assert RetryPolicy.from_retry_config(config, stuck_detection=False).max_elapsed is None
    no_stuck = RetryConfig(enable_stuck_detection=False)
    assert RetryPolicy.from_retry_config(no_stuck).max_elapsed is None
