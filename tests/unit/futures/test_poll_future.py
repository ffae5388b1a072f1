"""poll_future over HTTP: every row of docs/protocol.md "Futures", cancellation and leaks."""

from __future__ import annotations

import concurrent.futures as cf
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import responses

from tinkex._config import ClientSettings
from tinkex._exceptions import (
    APIResponseValidationError,
    RequestErrorCategory,
    RequestFailedError,
    RetryableException,
)
from tinkex._executor import DaemonThreadPoolExecutor
from tinkex._futures import APIFuture, QueueState
from tinkex._poller import poll_future
from tinkex._transport import BytesSemaphore, RateLimiter, Response, Transport
from tinkex.metrics import MetricsRegistry
from tinkex.telemetry import attach, detach

BASE_URL = "http://tinker.test"
URL = f"{BASE_URL}/api/v1/retrieve_future"
PROTO = "application/x-protobuf"


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def transport() -> Iterator[Transport]:
    settings = ClientSettings(base_url=BASE_URL, api_key="tml-poll-key")
    # 429 answers open a rate-limit window; a fake clock that jumps on sleep makes it free.
    now = [0.0]

    def skip(seconds: float) -> None:
        now[0] += seconds

    limiter = RateLimiter(clock=lambda: now[0], sleep=skip)
    with Transport(settings, rate_limiter=limiter) as t:
        yield t


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def json_decode(response: Response) -> Any:
    return ("json", response.json())


def proto_decode(response: Response) -> Any:
    return ("proto" if response.is_protobuf else "json", response.content)


def poll(
    transport: Transport,
    sleeps: Sleeps,
    *,
    request_type: str = "OptimStep",
    decode: Callable[[Response], Any] = json_decode,
    **kwargs: Any,
) -> Any:
    return poll_future(
        transport,
        "req-1",
        request_type=request_type,
        decode=decode,
        stop=kwargs.pop("stop", threading.Event()),
        sleep=sleeps,
        **kwargs,
    )


def bodies(mocked: responses.RequestsMock) -> list[dict[str, Any]]:
    return [json.loads(c.request.body) for c in mocked.calls]


# ---- 200 rows --------------------------------------------------------------------------------


def test_protobuf_payload_headers_and_body(
    transport: Transport, mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    mocked.post(URL, json={"type": "try_again", "request_id": "req-1", "queue_state": "active"})
    mocked.post(URL, body=b"\x0a\x00", content_type="application/x-protobuf; charset=binary")
    result = poll(
        transport, sleeps, request_type="Sample", decode=proto_decode, create_roundtrip_time=0.125
    )
    assert result == ("proto", b"\x0a\x00")
    first, second = (c.request.headers for c in mocked.calls)
    assert first["X-Tinker-Request-Iteration"] == "0"
    assert second["X-Tinker-Request-Iteration"] == "1"
    assert first["X-Tinker-Request-Type"] == second["X-Tinker-Request-Type"] == "Sample"
    assert first["X-Tinker-Create-Promise-Roundtrip-Time"] == "0.125"
    assert "X-Tinker-Create-Promise-Roundtrip-Time" not in second
    assert first["Accept"] == PROTO
    assert first["x-stainless-read-timeout"] == "45"
    assert bodies(mocked) == [{"request_id": "req-1", "allow_metadata_only": True}] * 2
    assert sleeps.calls == []


@pytest.mark.parametrize(
    ("request_type", "accept"),
    [
        ("ForwardBackward", PROTO),
        ("Forward", PROTO),
        ("Sample", PROTO),
        ("OptimStep", "application/json"),
        ("CreateModel", "application/json"),
    ],
)
def test_accept_header_by_request_type(
    transport: Transport,
    mocked: responses.RequestsMock,
    sleeps: Sleeps,
    request_type: str,
    accept: str,
) -> None:
    mocked.post(URL, json={"type": "optim_step"})
    poll(transport, sleeps, request_type=request_type)
    assert mocked.calls[0].request.headers["Accept"] == accept


def test_try_again_repolls_immediately_and_reports_queue_state(
    transport: Transport, mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    mocked.post(
        URL,
        json={
            "type": "try_again",
            "request_id": "req-1",
            "queue_state": "paused_capacity",
            "queue_state_reason": "busy",
        },
    )
    mocked.post(
        URL, json={"type": "try_again", "request_id": "req-1", "queue_state": "paused_rate_limit"}
    )
    mocked.post(URL, json={"type": "try_again", "request_id": "req-1"})  # no state: no report
    mocked.post(URL, json={"type": "try_again", "queue_state": "weird"})
    mocked.post(URL, json={"type": "optim_step", "metrics": {}})
    seen: list[tuple[QueueState, str | None]] = []
    result = poll(transport, sleeps, on_queue_state=lambda s, r: seen.append((s, r)))
    assert result == ("json", {"type": "optim_step", "metrics": {}})
    assert seen == [
        (QueueState.PAUSED_CAPACITY, "busy"),
        (QueueState.PAUSED_RATE_LIMIT, None),
        (QueueState.UNKNOWN, None),
        (QueueState.ACTIVE, None),  # completion
    ]
    assert sleeps.calls == []
    assert len(mocked.calls) == 5


def test_queue_state_callback_errors_do_not_break_polling(
    transport: Transport, mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    mocked.post(URL, json={"type": "try_again", "queue_state": "active"})
    mocked.post(URL, json={"ok": 1})

    def bad(state: QueueState, reason: str | None) -> None:
        raise RuntimeError("observer bug")

    assert poll(transport, sleeps, on_queue_state=bad) == ("json", {"ok": 1})


def test_complete_metadata_reserves_bytes_then_fetches_without_metadata(
    transport: Transport, mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    budget = BytesSemaphore(1000)
    in_flight_at_decode: list[int] = []
    mocked.post(URL, json={"status": "complete_metadata", "response_payload_size": 700})
    mocked.post(URL, body=b"payload", content_type=PROTO)

    def decode(response: Response) -> bytes:
        in_flight_at_decode.append(budget.in_flight)
        return response.content

    assert poll(transport, sleeps, decode=decode, response_bytes=budget) == b"payload"
    assert bodies(mocked) == [
        {"request_id": "req-1", "allow_metadata_only": True},
        {"request_id": "req-1", "allow_metadata_only": False},
    ]
    assert in_flight_at_decode == [700]
    assert budget.in_flight == 0


def test_complete_metadata_twice_is_an_error(
    transport: Transport, mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    budget = BytesSemaphore(1000)
    mocked.post(URL, json={"status": "complete_metadata", "response_payload_size": 10})
    with pytest.raises(ValueError, match=r"complete_metadata twice for request_id='req-1'"):
        poll(transport, sleeps, response_bytes=budget)
    assert budget.in_flight == 0


@pytest.mark.parametrize(
    ("category", "expected"),
    [
        ("user", RequestErrorCategory.User),
        ("server", RequestErrorCategory.Server),
        ("unknown", RequestErrorCategory.Unknown),
        ("martian", RequestErrorCategory.Unknown),
        (None, RequestErrorCategory.Unknown),
    ],
)
def test_error_body_raises_request_failed(
    transport: Transport,
    mocked: responses.RequestsMock,
    sleeps: Sleeps,
    category: Any,
    expected: RequestErrorCategory,
) -> None:
    body: dict[str, Any] = {"error": "loss exploded"}
    if category is not None:
        body["category"] = category
    mocked.post(URL, json=body)
    seen: list[QueueState] = []
    with pytest.raises(RequestFailedError) as info:
        poll(transport, sleeps, on_queue_state=lambda s, r: seen.append(s))
    assert info.value.category is expected
    assert info.value.request_id == "req-1"
    assert "loss exploded" in str(info.value) and "req-1" in str(info.value)
    assert seen == [QueueState.ACTIVE]


def test_json_result_for_proto_type_goes_to_decode(
    transport: Transport, mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    mocked.post(URL, json={"sequences": []})
    assert poll(transport, sleeps, request_type="Sample", decode=proto_decode) == (
        "json",
        b'{"sequences": []}',
    )


def test_decode_errors_become_value_errors_but_tinker_errors_propagate(
    transport: Transport, mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    mocked.post(URL, body=b"\xff", content_type=PROTO)

    def broken(response: Response) -> Any:
        raise IndexError("truncated varint")

    with pytest.raises(ValueError, match=r"could not decode the protobuf payload.*req-1.*varint"):
        poll(transport, sleeps, request_type="Sample", decode=broken)

    def invalid(response: Response) -> Any:
        raise APIResponseValidationError(message="OptimStepResponse.metrics: wrong type")

    with pytest.raises(APIResponseValidationError):
        poll(transport, sleeps, decode=invalid)


# ---- HTTP status rows ------------------------------------------------------------------------


def test_408_repolls_immediately_and_reports_queue_state(
    transport: Transport, mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    mocked.post(URL, status=408, json={"type": "try_again", "queue_state": "paused_capacity"})
    mocked.post(URL, status=408, body=b"")
    mocked.post(URL, json={"ok": 1})
    seen: list[QueueState] = []
    assert poll(transport, sleeps, on_queue_state=lambda s, r: seen.append(s)) == (
        "json",
        {"ok": 1},
    )
    assert seen == [QueueState.PAUSED_CAPACITY, QueueState.ACTIVE]
    assert sleeps.calls == []


@pytest.mark.parametrize("status", [500, 502, 503, 599])
def test_5xx_repolls_immediately(
    transport: Transport, mocked: responses.RequestsMock, sleeps: Sleeps, status: int
) -> None:
    mocked.post(URL, status=status, json={"detail": "x"})
    mocked.post(URL, status=status, json={"detail": "x"})
    mocked.post(URL, json={"ok": 1})
    assert poll(transport, sleeps) == ("json", {"ok": 1})
    assert sleeps.calls == []
    assert len(mocked.calls) == 3


def test_429_and_connection_errors_back_off_and_any_answer_resets(
    transport: Transport, mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    mocked.post(URL, status=429, json={})
    mocked.post(URL, status=429, json={})
    mocked.post(URL, body=requests.ConnectionError("reset"))
    mocked.post(URL, status=503, json={})  # an HTTP answer resets the exponent
    mocked.post(URL, status=429, json={})
    mocked.post(URL, body=requests.ReadTimeout("45 s"))
    mocked.post(URL, json={"type": "try_again"})
    mocked.post(URL, body=requests.ConnectionError("reset"))
    mocked.post(URL, json={"ok": 1})
    assert poll(transport, sleeps) == ("json", {"ok": 1})
    assert sleeps.calls == [1, 2, 4, 1, 2, 1]


def test_backoff_is_capped_at_30_seconds(
    transport: Transport, mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    for _ in range(8):
        mocked.post(URL, body=requests.ConnectionError("down"))
    mocked.post(URL, json={"ok": 1})
    poll(transport, sleeps)
    assert sleeps.calls == [1, 2, 4, 8, 16, 30, 30, 30]


def test_400_is_retried_three_times_then_value_error(
    transport: Transport, mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    for _ in range(3):
        mocked.post(URL, status=400, json={"detail": "proxy"})
    mocked.post(URL, json={"ok": 1})
    assert poll(transport, sleeps) == ("json", {"ok": 1})

    mocked.replace(responses.POST, URL, status=400, json={"detail": "proxy"})
    mocked.calls.reset()
    with pytest.raises(ValueError, match=r"status 400.*req-1.*exceeded 3 retries"):
        poll(transport, sleeps)
    assert len(mocked.calls) == 4
    assert sleeps.calls == []


def test_402_pauses_5_seconds_until_the_billing_window_ends(
    transport: Transport, mocked: responses.RequestsMock
) -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    sleeps: list[float] = []
    mocked.post(URL, status=402, json={"detail": "pay"})
    mocked.post(URL, status=402, json={"detail": "pay"})
    mocked.post(URL, json={"ok": 1})
    result = poll_future(
        transport,
        "req-1",
        request_type="OptimStep",
        decode=json_decode,
        stop=threading.Event(),
        sleep=sleep,
        clock=lambda: now[0],
    )
    assert result == ("json", {"ok": 1})
    assert sleeps == [5, 5]

    mocked.replace(responses.POST, URL, status=402, json={"detail": "pay"})
    sleeps.clear()
    with pytest.raises(ValueError, match=r"with status 402 for request_id='req-1'"):
        poll_future(
            transport,
            "req-1",
            request_type="OptimStep",
            decode=json_decode,
            stop=threading.Event(),
            sleep=sleep,
            clock=lambda: now[0],
            billing_max_pause=20,
        )
    assert sleeps == [5, 5, 5, 5]


def test_410_raises_retryable_exception(
    transport: Transport, mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    mocked.post(URL, status=410, json={"detail": "gone"})
    with pytest.raises(RetryableException, match="req-1"):
        poll(transport, sleeps, request_type="Sample")


@pytest.mark.parametrize("status", [401, 403, 404, 409, 418, 422])
def test_other_4xx_are_fatal_value_errors_naming_request_and_status(
    transport: Transport, mocked: responses.RequestsMock, sleeps: Sleeps, status: int
) -> None:
    mocked.post(URL, status=status, json={"detail": "no"})
    with pytest.raises(ValueError) as info:
        poll(transport, sleeps, request_type="SaveWeights")
    text = str(info.value)
    assert f"status {status}" in text
    assert "request_id='req-1'" in text
    assert "SaveWeights" in text
    assert len(mocked.calls) == 1


# ---- cancellation, stop, leaks, telemetry ----------------------------------------------------


def test_stop_event_set_before_polling_raises_cancelled(
    transport: Transport, mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    stop = threading.Event()
    stop.set()
    with pytest.raises(cf.CancelledError):
        poll(transport, sleeps, stop=stop)
    assert len(mocked.calls) == 0


def test_stop_event_interrupts_a_backoff_sleep(
    transport: Transport, mocked: responses.RequestsMock
) -> None:
    mocked.post(URL, body=requests.ConnectionError("down"))
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    started = time.monotonic()
    with pytest.raises(cf.CancelledError):
        poll_future(transport, "req-1", request_type="Sample", decode=json_decode, stop=stop)
    assert time.monotonic() - started < 0.9  # the first back-off alone would be 1 s


def _slow_try_again(request: Any) -> tuple[int, dict[str, str], str]:
    time.sleep(0.005)  # a (very short) long-poll
    return 200, {"content-type": "application/json"}, '{"type": "try_again"}'


def test_result_timeout_then_cancel_ends_the_poller(
    transport: Transport, mocked: responses.RequestsMock
) -> None:
    mocked.add_callback(responses.POST, URL, callback=_slow_try_again)
    pool = DaemonThreadPoolExecutor(max_workers=1, thread_name_prefix="poller")
    ended = threading.Event()
    stop = threading.Event()

    def run() -> Any:
        try:
            return poll_future(
                transport, "req-1", request_type="Sample", decode=json_decode, stop=stop
            )
        finally:
            ended.set()

    fut = APIFuture.run(pool, run)
    with pytest.raises(TimeoutError):
        fut.result(timeout=0.05)
    assert not ended.is_set()  # still polling: result(timeout) does not cancel
    assert fut.cancel()
    assert ended.wait(5), "poller kept running after its future was cancelled"
    threads = list(pool._threads)
    pool.shutdown(wait=True)
    assert not any(t.is_alive() for t in threads)
    assert not stop.is_set()


def test_owner_stop_event_ends_the_poller_and_cancels_the_future(
    transport: Transport, mocked: responses.RequestsMock
) -> None:
    mocked.add_callback(responses.POST, URL, callback=_slow_try_again)
    pool = DaemonThreadPoolExecutor(max_workers=1)
    stop = threading.Event()
    fut = APIFuture.run(
        pool,
        lambda: poll_future(
            transport, "req-1", request_type="Sample", decode=json_decode, stop=stop
        ),
    )
    with pytest.raises(TimeoutError):
        fut.result(timeout=0.03)
    stop.set()
    cf.wait([fut], timeout=5)
    assert fut.cancelled()
    threads = list(pool._threads)
    pool.shutdown(wait=True)
    assert not any(t.is_alive() for t in threads)


def test_cancel_wakes_a_real_backoff_sleep(
    transport: Transport, mocked: responses.RequestsMock
) -> None:
    mocked.post(URL, body=requests.ConnectionError("down"))
    pool = DaemonThreadPoolExecutor(max_workers=1)
    ended = threading.Event()

    def run() -> Any:
        try:
            return poll_future(
                transport,
                "req-1",
                request_type="Sample",
                decode=json_decode,
                stop=threading.Event(),
            )
        finally:
            ended.set()

    fut = APIFuture.run(pool, run)
    time.sleep(0.05)
    started = time.monotonic()
    fut.cancel()
    assert ended.wait(5)
    assert time.monotonic() - started < 0.9
    pool.shutdown(wait=True)


def test_telemetry_queue_state_and_complete_events(
    transport: Transport, mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    seen: list[tuple[str, dict[str, float], dict[str, Any]]] = []
    attach(
        "poll-test",
        ["tinkex.future.queue_state", "tinkex.future.complete"],
        lambda e, m, md: seen.append((e, dict(m), dict(md))),
    )
    try:
        mocked.post(URL, json={"type": "try_again", "queue_state": "paused_capacity"})
        mocked.post(URL, json={"ok": 1})
        poll(transport, sleeps)
    finally:
        detach("poll-test")
    assert [e[0] for e in seen] == [
        "tinkex.future.queue_state",
        "tinkex.future.queue_state",
        "tinkex.future.complete",
    ]
    assert seen[0][2]["queue_state"] == "paused_capacity"
    assert seen[2][2] == {"request_id": "req-1", "request_type": "OptimStep", "outcome": "ok"}
    assert seen[2][1]["iterations"] == 2.0


# ---- long waits are visible (no future waits silently) ---------------------------------------


def test_a_long_wait_logs_what_it_waits_on_with_growing_intervals(
    transport: Transport, mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    """Each poll takes 25 s of a fake clock; warnings after 1 min of waiting, then whenever the
    wait has doubled, each naming the request and the server's last answer."""
    now = [0.0]
    paused = {"type": "try_again", "queue_state": "paused_capacity", "queue_state_reason": "full"}
    for _ in range(12):
        mocked.post(URL, json=paused)
    mocked.post(URL, json={"ok": 1})

    def clock() -> float:
        now[0] += 25.0  # read once per answer
        return now[0]

    caplog.set_level("WARNING", logger="tinkex")
    result = poll(transport, Sleeps(), request_type="ForwardBackward", clock=clock)
    assert result == ("json", {"ok": 1})
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 3, warnings
    assert all("still waiting for request_id='req-1' (ForwardBackward)" in w for w in warnings)
    assert "after 1.2 min" in warnings[0] and "after 2.5 min" in warnings[1]
    assert "paused_capacity (full)" in warnings[0]


def test_a_short_wait_logs_nothing(
    transport: Transport, mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    mocked.post(URL, json={"type": "try_again"})
    mocked.post(URL, json={"ok": 1})
    caplog.set_level("WARNING", logger="tinkex")
    assert poll(transport, Sleeps()) == ("json", {"ok": 1})
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_telemetry_event_per_error_answer(
    transport: Transport, mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    events = [
        "tinkex.future.api_error",
        "tinkex.future.connection_error",
        "tinkex.future.request_failed",
        "tinkex.future.validation_error",
    ]
    seen: list[tuple[str, dict[str, float], dict[str, Any]]] = []
    attach("poll-errors", events, lambda e, m, md: seen.append((e, dict(m), dict(md))))
    try:
        mocked.post(URL, status=503, json={})
        mocked.post(URL, body=requests.ConnectionError("reset"))
        mocked.post(URL, status=429, json={})
        mocked.post(URL, json={"error": "loss exploded", "category": "user"})
        with MetricsRegistry() as registry, pytest.raises(RequestFailedError):
            poll(transport, sleeps)
        assert registry.counter("events.tinkex.future.api_error") == 2
        got = [
            (e.rsplit(".", 1)[1], md["iteration"], md["status"], md["retrying"])
            for e, _, md in seen
        ]
        assert got == [
            ("api_error", 0, 503, True),
            ("connection_error", 1, None, True),
            ("api_error", 2, 429, True),
            ("request_failed", 3, 200, False),
        ]
        assert seen[1][2]["error"] == "APIConnectionError"
        assert seen[3][2]["category"] == "user" and seen[3][2]["error"] == "RequestFailedError"
        assert all(
            md["request_id"] == "req-1" and md["request_type"] == "OptimStep" for _, _, md in seen
        )
        assert all(m["elapsed"] >= 0 for _, m, _ in seen)

        seen.clear()
        mocked.reset()
        mocked.post(URL, status=404, json={})
        with pytest.raises(ValueError, match="status 404"):
            poll(transport, sleeps)
        assert [(e, md["status"], md["retrying"]) for e, _, md in seen] == [
            ("tinkex.future.api_error", 404, False)
        ]

        seen.clear()
        mocked.reset()
        mocked.post(URL, json={"ok": 1})

        def broken(response: Response) -> Any:
            raise KeyError("sequences")

        with pytest.raises(ValueError, match="could not decode"):
            poll(transport, sleeps, decode=broken)
        assert [(e, md["error"], md["retrying"]) for e, _, md in seen] == [
            ("tinkex.future.validation_error", "KeyError", False)
        ]

        seen.clear()
        mocked.reset()
        mocked.post(URL, json=[1, 2])  # not what a Tinker API answers
        with pytest.raises(APIResponseValidationError):
            poll(transport, sleeps)
        assert [(e, md["error"], md["status"]) for e, _, md in seen] == [
            ("tinkex.future.validation_error", "APIResponseValidationError", 200)
        ]
    finally:
        detach("poll-errors")
    # Answers that are not errors emit none of these.
    seen.clear()
    mocked.reset()
    mocked.post(URL, json={"ok": 1})
    attach("poll-errors", events, lambda e, m, md: seen.append((e, dict(m), dict(md))))
    try:
        poll(transport, sleeps)
    finally:
        detach("poll-errors")
    assert seen == []
