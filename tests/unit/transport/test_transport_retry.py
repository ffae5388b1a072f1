"""Retry policies: layer 1 through Transport.request, layer 2 through RetryPolicy.call."""

from __future__ import annotations

import email.utils
import threading
import time
from concurrent.futures import CancelledError
from typing import Any

import pytest
import requests
import responses
import tenacity

from tinkex._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    BillingError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    make_status_error,
)
from tinkex._transport import (
    NO_RETRY,
    RetryPolicy,
    Transport,
    holder_retry_policy,
    http_retry_policy,
    parse_retry_after,
)

from .conftest import BASE_URL, FakeClock

URL = f"{BASE_URL}/api/v1/x"


def _post(transport: Transport, **kwargs: Any) -> Any:
    return transport.request("POST", "/api/v1/x", json={"a": 1}, **kwargs)


# ---- layer 1: which answers are retried -----------------------------------------------------


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(
    transport: Transport, mocked: responses.RequestsMock, clock: FakeClock, status: int
) -> None:
    mocked.post(URL, status=status, json={"detail": "busy"})
    mocked.post(URL, json={"ok": True})
    assert _post(transport).json() == {"ok": True}
    assert len(mocked.calls) == 2
    if status == 429:
        # back-off sleep, then the rest of the key's 1 s rate-limit window
        assert sum(clock.sleeps) == pytest.approx(1.0)
    else:
        assert len(clock.sleeps) == 1


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 410, 422])
def test_permanent_statuses_are_not_retried(
    transport: Transport, mocked: responses.RequestsMock, clock: FakeClock, status: int
) -> None:
    mocked.post(URL, status=status, json={"detail": "no"})
    with pytest.raises(APIStatusError) as info:
        _post(transport)
    assert info.value.status_code == status
    assert len(mocked.calls) == 1
    assert clock.sleeps == []


def test_retries_reuse_idempotency_key_and_count_attempts(
    transport: Transport, mocked: responses.RequestsMock
) -> None:
    mocked.post(URL, status=503, json={})
    mocked.post(URL, body=requests.ConnectionError("reset"))
    mocked.post(URL, status=429, json={})
    mocked.post(URL, json={"ok": True})
    _post(transport)
    calls = [c.request for c in mocked.calls]
    assert [c.headers["x-stainless-retry-count"] for c in calls] == ["0", "1", "2", "3"]
    keys = {c.headers["X-Idempotency-Key"] for c in calls}
    assert len(keys) == 1
    assert all(c.body == b'{"a":1}' for c in calls)


def test_connection_errors_and_timeouts_are_retried(
    transport: Transport, mocked: responses.RequestsMock
) -> None:
    mocked.post(URL, body=requests.ConnectionError("refused"))
    mocked.post(URL, body=requests.ReadTimeout("slow"))
    mocked.post(URL, json={"ok": True})
    assert _post(transport).json() == {"ok": True}
    assert len(mocked.calls) == 3


def test_budget_exhaustion_raises_last_error_after_max_retries(
    transport: Transport, mocked: responses.RequestsMock, clock: FakeClock
) -> None:
    mocked.post(URL, status=500, json={"detail": "boom"})
    with pytest.raises(InternalServerError):
        _post(transport)
    assert len(mocked.calls) == 11  # 1 + max_retries (10)
    # min(0.5 * 2**n, 10) * U(0.75, 1)
    for n, slept in enumerate(clock.sleeps):
        cap = min(0.5 * 2**n, 10.0)
        assert 0.75 * cap <= slept <= cap


def test_timeouts_exhaust_to_api_timeout_error(
    settings: Any, mocked: responses.RequestsMock, clock: FakeClock
) -> None:
    mocked.post(URL, body=requests.ReadTimeout("slow"))
    settings2 = type(settings)(base_url=BASE_URL, api_key=settings.api_key, max_retries=2)
    with Transport(settings2, sleep=clock.sleep, clock=clock) as t, pytest.raises(APITimeoutError):
        _post(t)
    assert len(mocked.calls) == 3


def test_no_retry_policy_makes_one_attempt(
    transport: Transport, mocked: responses.RequestsMock, clock: FakeClock
) -> None:
    mocked.post(URL, status=503, json={})
    with pytest.raises(InternalServerError):
        _post(transport, retry=NO_RETRY)
    assert len(mocked.calls) == 1
    assert clock.sleeps == []


def test_explicit_policy_overrides_settings(
    transport: Transport, mocked: responses.RequestsMock
) -> None:
    mocked.post(URL, status=503, json={})
    with pytest.raises(InternalServerError):
        _post(transport, retry=http_retry_policy(max_retries=2))
    assert len(mocked.calls) == 3


def test_should_retry_header_true_forces_retry(
    transport: Transport, mocked: responses.RequestsMock
) -> None:
    mocked.post(URL, status=400, json={"detail": "x"}, headers={"x-should-retry": "true"})
    mocked.post(URL, json={"ok": True})
    assert _post(transport).json() == {"ok": True}
    assert len(mocked.calls) == 2


def test_should_retry_header_false_forbids_retry(
    transport: Transport, mocked: responses.RequestsMock
) -> None:
    mocked.post(URL, status=503, json={}, headers={"x-should-retry": "false"})
    with pytest.raises(InternalServerError):
        _post(transport)
    assert len(mocked.calls) == 1


def test_empty_bodied_400_is_a_proxy_artefact_and_retried(
    transport: Transport, mocked: responses.RequestsMock
) -> None:
    mocked.post(URL, status=400, body=b"")
    mocked.post(URL, json={"ok": True})
    assert _post(transport).json() == {"ok": True}
    mocked.post(f"{BASE_URL}/api/v1/y", status=400, json={"detail": "bad field"})
    with pytest.raises(BadRequestError):
        transport.request("POST", "/api/v1/y", json={})


# ---- layer 1: how long to wait ----------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "300", "retry-after": "9"}, 0.3),  # -ms wins
        ({"retry-after": "60"}, 60.0),
    ],
)
def test_retry_after_is_honoured(
    transport: Transport,
    mocked: responses.RequestsMock,
    clock: FakeClock,
    headers: dict[str, str],
    expected: float,
) -> None:
    mocked.post(URL, status=503, json={}, headers=headers)
    mocked.post(URL, json={})
    _post(transport)
    assert clock.sleeps == [pytest.approx(expected)]


def test_retry_after_http_date(
    transport: Transport, mocked: responses.RequestsMock, clock: FakeClock
) -> None:
    when = email.utils.formatdate(time.time() + 5, usegmt=True)
    mocked.post(URL, status=503, json={}, headers={"retry-after": when})
    mocked.post(URL, json={})
    _post(transport)
    assert 3.5 <= clock.sleeps[0] <= 5.0


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "0"},
        {"retry-after": "-3"},
        {"retry-after": "61"},
        {"retry-after": "3600"},
        {"retry-after-ms": "120000"},
        {"retry-after": "soon"},
        {"retry-after": email.utils.formatdate(time.time() - 30, usegmt=True)},
    ],
)
def test_out_of_range_retry_after_falls_back_to_backoff(
    transport: Transport, mocked: responses.RequestsMock, clock: FakeClock, headers: dict[str, str]
) -> None:
    mocked.post(URL, status=503, json={}, headers=headers)
    mocked.post(URL, json={})
    _post(transport)
    assert 0.375 <= clock.sleeps[0] <= 0.5


def test_parse_retry_after_directly() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "7"}) == 7.0
    assert parse_retry_after({"retry-after-ms": "nan-ish", "retry-after": "3"}) == 3.0
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 10, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=now) == pytest.approx(10.0)


# ---- policies are values -----------------------------------------------------------------


def test_policies_are_printable_comparable_values_built_from_tenacity() -> None:
    policy = http_retry_policy(3)
    assert policy == http_retry_policy(3)
    assert policy != http_retry_policy(4)
    assert "RetryPolicy(name='http', max_retries=3" in repr(policy)
    assert isinstance(policy.stop, tenacity.stop.stop_base)
    assert isinstance(policy.wait, tenacity.wait.wait_base)
    assert isinstance(policy.retry, tenacity.retry_base)
    assert "Retry-After or min(0.5 * 2^n, 10) * U(0.75, 1)" in repr(policy.wait)
    holder = holder_retry_policy()
    assert holder.max_elapsed == 300.0 and holder.max_retries is None
    assert "min(1 * 2^n, 30)" in repr(holder.wait)
    assert NO_RETRY.max_retries == 0
    with pytest.raises(ValueError, match="max_retries must be >= 0, got -1"):
        http_retry_policy(-1)


def test_policy_predicate_table() -> None:
    http = http_retry_policy()
    holder = holder_retry_policy()

    def status(code: int, body: object = None, headers: dict[str, str] | None = None) -> Any:
        class R:
            pass

        r = R()
        r.headers = headers or {}  # type: ignore[attr-defined]
        return make_status_error(code, body, response=r)

    for policy in (http, holder):
        assert policy.is_retryable(APIConnectionError())
        assert policy.is_retryable(APITimeoutError())
        for code in (408, 409, 429, 500, 599):
            assert policy.is_retryable(status(code, {"d": 1}))
        for code in (400, 401, 402, 403, 404, 410, 422):
            assert not policy.is_retryable(status(code, {"d": 1}))
        assert not policy.is_retryable(ValueError("x"))
    # header override only at the HTTP layer
    assert http.is_retryable(status(404, {"d": 1}, {"x-should-retry": "true"}))
    assert not holder.is_retryable(status(404, {"d": 1}, {"x-should-retry": "true"}))
    assert not http.is_retryable(status(500, {"d": 1}, {"x-should-retry": "false"}))
    assert http.is_retryable(status(400, None))
    assert not holder.is_retryable(status(400, None))


# ---- layer 2: holder policy ----------------------------------------------------------------


class Flaky:
    """Raises the queued exceptions in order, then returns "done"."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


def _err(code: int) -> APIStatusError:
    return make_status_error(code, {"detail": "x"}, request="POST /api/v1/y")


def test_holder_backoff_doubles_to_30_seconds(clock: FakeClock) -> None:
    fn = Flaky(*[_err(503) for _ in range(7)])
    assert holder_retry_policy().call(fn, sleep=clock.sleep, clock=clock) == "done"
    assert clock.sleeps == [1, 2, 4, 8, 16, 30, 30]


def test_holder_gives_up_after_300_seconds(clock: FakeClock) -> None:
    fn = Flaky(*[APIConnectionError() for _ in range(100)])
    with pytest.raises(APIConnectionError):
        holder_retry_policy().call(fn, sleep=clock.sleep, clock=clock)
    # 1+2+4+8+16+30*n ... the last sleep is clipped so the loop ends at exactly 300 s.
    assert sum(clock.sleeps) == pytest.approx(300.0)
    assert clock.sleeps[:5] == [1, 2, 4, 8, 16]
    assert fn.calls == len(clock.sleeps) + 1


def test_holder_does_not_retry_permanent_errors(clock: FakeClock) -> None:
    fn = Flaky(_err(404))
    with pytest.raises(NotFoundError):
        holder_retry_policy().call(fn, sleep=clock.sleep, clock=clock)
    assert fn.calls == 1
    fn2 = Flaky(KeyError("bug"))
    with pytest.raises(KeyError):
        holder_retry_policy().call(fn2, sleep=clock.sleep, clock=clock)


def test_holder_pauses_on_402_without_counting(clock: FakeClock) -> None:
    fn = Flaky(_err(402), _err(402), _err(429), _err(402), _err(503))
    assert holder_retry_policy().call(fn, sleep=clock.sleep, clock=clock) == "done"
    # 402s sleep 5 s and do not advance the back-off exponent: 429 -> 1 s, 503 -> 2 s.
    assert clock.sleeps == [5, 5, 1, 5, 2]


def test_holder_402_pause_ends_after_max_pause(clock: FakeClock) -> None:
    fn = Flaky(*[_err(402) for _ in range(1000)])
    with pytest.raises(BillingError):
        holder_retry_policy(billing_max_pause=60).call(fn, sleep=clock.sleep, clock=clock)
    assert clock.sleeps == [5] * 12


def test_holder_stop_event_cancels(clock: FakeClock) -> None:
    stop = threading.Event()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        stop.set()

    fn = Flaky(_err(503), _err(503))
    with pytest.raises(CancelledError):
        holder_retry_policy().call(fn, sleep=sleep, clock=clock, stop_event=stop)
    assert fn.calls == 1


def test_default_sleep_wakes_on_stop_event() -> None:
    stop = threading.Event()
    fn = Flaky(_err(503))
    threading.Timer(0.05, stop.set).start()
    started = time.monotonic()
    with pytest.raises(CancelledError):
        RetryPolicy(name="slow", backoff_initial=30, jitter=0).call(fn, stop_event=stop)
    assert time.monotonic() - started < 5


def test_policy_call_passes_arguments_and_emits_retry_event(
    clock: FakeClock, events: list[tuple[str, dict[str, Any], dict[str, Any]]]
) -> None:
    calls: list[tuple[int, str]] = []

    def fn(a: int, *, b: str) -> str:
        calls.append((a, b))
        if len(calls) == 1:
            raise RateLimitError("slow down", status_code=429)
        return "ok"

    result = holder_retry_policy().call(
        fn, 1, b="x", sleep=clock.sleep, clock=clock, describe="POST /api/v1/z"
    )
    assert result == "ok"
    assert calls == [(1, "x"), (1, "x")]
    assert events == [
        (
            "tinkex.http.retry",
            {"delay": 1.0, "attempt": 1.0},
            {
                "policy": "holder",
                "request": "POST /api/v1/z",
                "method": "POST",
                "path": "/api/v1/z",
                "error": "RateLimitError",
                "status": 429,
            },
        )
    ]


def test_stop_event_ends_http_retries(transport: Transport, mocked: responses.RequestsMock) -> None:
    stop = threading.Event()
    mocked.post(URL, status=503, json={})
    original = transport._sleep

    def sleep(seconds: float) -> None:
        assert original is not None
        original(seconds)
        stop.set()  # the owner closes while we back off

    transport._sleep = sleep
    with pytest.raises(CancelledError):
        _post(transport, stop=stop)
    assert len(mocked.calls) == 1
