"""The telemetry Reporter: wire format, batching, retries, draining, kill switch, scrubbing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tinkex import telemetry
from tinkex._exceptions import BadRequestError, RequestFailedError
from tinkex.telemetry import Reporter

API_KEY = "tml-SuperSecretKey1234567890"


class FakeSender:
    """Collects payloads; can fail the first ``failures`` calls or block until released."""

    def __init__(self, failures: int = 0, block: bool = False) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.calls = 0
        self.failures = failures
        self.release = threading.Event()
        if not block:
            self.release.set()
        self.got = threading.Event()

    def __call__(self, payload: dict[str, Any]) -> None:
        self.calls += 1
        self.release.wait(5)
        if self.calls <= self.failures:
            raise ConnectionError(f"attempt {self.calls} failed")
        self.payloads.append(json.loads(json.dumps(payload)))  # must be JSON-able
        self.got.set()

    @property
    def events(self) -> list[dict[str, Any]]:
        return [event for payload in self.payloads for event in payload["events"]]


@pytest.fixture
def reporters() -> Iterator[list[Reporter]]:
    made: list[Reporter] = []
    yield made
    for reporter in made:
        reporter.close(timeout=1)


def make(reporters: list[Reporter], send: FakeSender, **kwargs: Any) -> Reporter:
    kwargs.setdefault("enabled", True)
    kwargs.setdefault("flush_interval", 1000.0)
    kwargs.setdefault("sleep", lambda s: None)
    reporter = Reporter(send, **kwargs)
    reporters.append(reporter)
    return reporter


def test_payload_matches_wire_format(reporters: list[Reporter]) -> None:
    send = FakeSender()
    reporter = make(reporters, send, session_id="sess-1", sdk_version="0.38.0")
    assert reporter.log("my.event", {"step": 3, "obj": object()}, "WARNING")
    assert reporter.wait_until_drained(2)
    payload = send.payloads[0]
    assert set(payload) == {"events", "platform", "sdk_version", "session_id", "process_uuid"}
    assert payload["session_id"] == "sess-1" and payload["sdk_version"] == "0.38.0"
    start, generic = payload["events"]
    assert start["event"] == "SESSION_START" and start["severity"] == "INFO"
    assert generic["event"] == "GENERIC_EVENT" and generic["severity"] == "WARNING"
    assert generic["event_name"] == "my.event" and generic["event_data"]["step"] == 3
    assert isinstance(generic["event_data"]["obj"], str)
    assert [start["event_session_index"], generic["event_session_index"]] == [0, 1]
    assert start["event_id"] != generic["event_id"]
    assert generic["timestamp"].endswith("Z") and "T" in generic["timestamp"]


def test_sessionless_reporter_has_no_session_start(reporters: list[Reporter]) -> None:
    send = FakeSender()
    reporter = make(reporters, send)
    reporter.log("x")
    assert reporter.wait_until_drained(2)
    assert send.payloads[0]["session_id"].startswith("sessionless-")
    assert [e["event"] for e in send.events] == ["GENERIC_EVENT"]
    reporter.start_session("sess-9")
    reporter.log("y")
    assert reporter.wait_until_drained(2)
    assert send.payloads[-1]["session_id"] == "sess-9"
    assert [e["event"] for e in send.payloads[-1]["events"]] == ["SESSION_START", "GENERIC_EVENT"]


def test_flush_at_threshold_without_waiting_for_interval(reporters: list[Reporter]) -> None:
    send = FakeSender()
    reporter = make(reporters, send, flush_threshold=3)
    reporter.log("a")
    reporter.log("b")
    time.sleep(0.02)
    assert send.calls == 0  # below threshold, interval is 1000 s
    reporter.log("c")
    assert send.got.wait(2)
    assert [e["event_name"] for e in send.events] == ["a", "b", "c"]


def test_periodic_flush(reporters: list[Reporter]) -> None:
    send = FakeSender()
    reporter = make(reporters, send, flush_interval=0.01)
    reporter.log("tick")
    assert send.got.wait(2)


def test_exception_triggers_immediate_flush(reporters: list[Reporter]) -> None:
    send = FakeSender()
    reporter = make(reporters, send)
    reporter.log_exception(ValueError("bad"))
    assert send.got.wait(2)


def test_batches_are_capped(reporters: list[Reporter]) -> None:
    send = FakeSender()
    reporter = make(reporters, send, max_batch=100, flush_threshold=10_000)
    for i in range(250):
        reporter.log(f"e{i}")
    assert reporter.wait_until_drained(5)
    assert [len(p["events"]) for p in send.payloads] == [100, 100, 50]
    assert [e["event_session_index"] for e in send.events] == list(range(250))


def test_retries_with_backoff_then_succeeds(reporters: list[Reporter]) -> None:
    delays: list[float] = []
    send = FakeSender(failures=2)
    reporter = make(reporters, send, sleep=delays.append, retry_base_delay=0.5, max_retries=3)
    reporter.log("x")
    assert reporter.wait_until_drained(2)
    assert delays == [0.5, 1.0]
    assert send.calls == 3 and len(send.payloads) == 1
    assert reporter.dropped == 0


def test_gives_up_after_max_retries(reporters: list[Reporter]) -> None:
    delays: list[float] = []
    send = FakeSender(failures=100)
    reporter = make(reporters, send, sleep=delays.append, max_retries=2, retry_max_delay=0.75)
    reporter.log("x")
    reporter.log("y")
    assert reporter.wait_until_drained(2)
    assert send.calls == 3 and delays == [0.5, 0.75]
    assert reporter.dropped == 2


def test_wait_until_drained_respects_timeout(reporters: list[Reporter]) -> None:
    send = FakeSender(block=True)
    reporter = make(reporters, send)
    reporter.log("slow")
    started = time.monotonic()
    assert reporter.wait_until_drained(0.05) is False
    assert time.monotonic() - started < 1.0
    assert reporter.pending == 1
    send.release.set()
    assert reporter.wait_until_drained(2) is True
    assert reporter.pending == 0


def test_close_flushes_and_is_idempotent(reporters: list[Reporter]) -> None:
    send = FakeSender()
    reporter = make(reporters, send)
    reporter.log("last words")
    assert reporter.close(timeout=2) is True
    assert [e["event_name"] for e in send.events] == ["last words"]
    assert reporter.close() is True
    assert reporter.log("after close") is False


def test_exception_with_cause_chain(reporters: list[Reporter]) -> None:
    send = FakeSender()
    reporter = make(reporters, send)
    try:
        try:
            raise KeyError("inner problem")
        except KeyError as inner:
            raise RuntimeError("outer problem") from inner
    except RuntimeError as exc:
        reporter.log_exception(exc)
    assert reporter.wait_until_drained(2)
    (event,) = send.events
    assert event["event"] == "UNHANDLED_EXCEPTION" and event["severity"] == "ERROR"
    assert event["error_type"] == "RuntimeError" and event["error_message"] == "outer problem"
    assert "inner problem" in event["traceback"] and "direct cause" in event["traceback"]


def test_user_errors_are_generic_events(reporters: list[Reporter]) -> None:
    send = FakeSender()
    reporter = make(reporters, send)
    reporter.log_exception(BadRequestError("nope", status_code=400, body={"detail": "bad"}))
    reporter.log_exception(RequestFailedError("your fault", "req-1", "user"))
    assert reporter.wait_until_drained(2)
    first, second = send.events
    assert first["event"] == "GENERIC_EVENT" and first["event_name"] == "user_error"
    assert first["event_data"]["status_code"] == 400
    assert first["event_data"]["body"] == {"detail": "bad"}
    assert second["event_name"] == "user_error"
    assert second["event_data"]["error_type"] == "RequestFailedError"


def test_fatal_exception_ends_session_and_flushes(reporters: list[Reporter]) -> None:
    now = [100.0]
    send = FakeSender()
    reporter = make(reporters, send, session_id="s", clock=lambda: now[0])
    now[0] += 723.5
    reporter.log_fatal_exception(RuntimeError("died"))
    # Delivered before log_fatal_exception returned.
    kinds = [e["event"] for e in send.events]
    assert kinds == ["SESSION_START", "UNHANDLED_EXCEPTION", "SESSION_END"]
    assert send.events[-1]["duration"] == "0:12:03.500000"


def test_context_manager_reports_fatal_exception(reporters: list[Reporter]) -> None:
    send = FakeSender()
    with pytest.raises(ZeroDivisionError), make(reporters, send, session_id="s"):
        1 / 0  # noqa: B018
    assert [e["event"] for e in send.events][-2:] == ["UNHANDLED_EXCEPTION", "SESSION_END"]


def test_kill_switch(monkeypatch: pytest.MonkeyPatch, reporters: list[Reporter]) -> None:
    monkeypatch.setenv("TINKER_TELEMETRY", "0")
    send = FakeSender()
    reporter = Reporter(send, session_id="s")
    reporters.append(reporter)
    assert reporter.enabled is False
    assert reporter.log("x") is False
    assert reporter.log_exception(ValueError("y")) is False
    assert reporter.wait_until_drained(0.1) is True
    assert reporter.close() is True
    assert send.calls == 0
    assert reporter._thread is None  # no background thread when disabled


def test_queue_cap_drops_new_events(reporters: list[Reporter]) -> None:
    send = FakeSender(block=True)
    reporter = make(reporters, send, max_queue=5, flush_threshold=1000)
    accepted = [reporter.log(f"e{i}") for i in range(7)]
    assert accepted == [True] * 5 + [False] * 2
    assert reporter.dropped == 2
    send.release.set()


def test_severity_is_validated(reporters: list[Reporter]) -> None:
    reporter = make(reporters, FakeSender())
    with pytest.raises(ValueError, match="severity"):
        reporter.log("x", severity="LOUD")


def test_forward_hook_events(reporters: list[Reporter]) -> None:
    send = FakeSender()
    reporter = make(reporters, send)
    handler_id = reporter.forward(telemetry.HTTP_RETRY, severity="WARNING")
    telemetry.emit(telemetry.HTTP_RETRY, {"attempt": 2.0}, {"path": "/api/v1/x"})
    assert reporter.wait_until_drained(2)
    (event,) = send.events
    assert event["event_name"] == telemetry.HTTP_RETRY
    assert event["event_data"] == {"path": "/api/v1/x", "attempt": 2.0}
    reporter.close()
    assert handler_id not in str(telemetry.attached())


def test_api_key_never_sent_over_http(reporters: list[Reporter]) -> None:
    """End to end through requests + responses: no request body contains the key."""
    import requests
    import responses

    url = "https://tinker.test/api/v1/telemetry"
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, url, json={"status": "accepted"})
        session = requests.Session()

        def send(payload: dict[str, Any]) -> None:
            response = session.post(url, json=payload, headers={"X-API-Key": API_KEY}, timeout=5)
            response.raise_for_status()

        reporter = Reporter(send, session_id="s", secrets=[API_KEY], enabled=True)
        reporters.append(reporter)
        jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
        reporter.log("cfg", {"api_key": API_KEY, "note": f"using {API_KEY}", "jwt": jwt})
        reporter.log("hdr", {"headers": {"Authorization": "Bearer abc123.def"}})
        try:
            try:
                raise ConnectionError(f"could not auth with {API_KEY}")
            except ConnectionError as inner:
                raise RuntimeError("Bearer sk-live-zzz rejected") from inner
        except RuntimeError as exc:
            reporter.log_fatal_exception(exc)
        assert reporter.close(timeout=2)
        bodies = [call.request.body for call in mock.calls]
    assert bodies
    text = b"".join(b if isinstance(b, bytes) else b.encode() for b in bodies).decode()
    for secret in (API_KEY, "SuperSecretKey", jwt, "abc123.def", "sk-live-zzz"):
        assert secret not in text
    assert "[REDACTED]" in text and "could not auth" in text


def test_forwarding_ignores_events_raised_by_its_own_send(reporters: list[Reporter]) -> None:
    payloads: list[dict[str, Any]] = []

    def send(payload: dict[str, Any]) -> None:
        telemetry.emit(
            telemetry.HTTP_REQUEST_STOP, {"duration": 0.01}, {"path": "/api/v1/telemetry"}
        )
        payloads.append(payload)

    reporter = Reporter(send, enabled=True, flush_interval=1000.0)
    reporters.append(reporter)
    reporter.forward(telemetry.HTTP_REQUEST_STOP)
    telemetry.emit(telemetry.HTTP_REQUEST_STOP, {"duration": 0.5}, {"path": "/api/v1/x"})
    assert reporter.wait_until_drained(2)
    assert reporter.wait_until_drained(2) and reporter.pending == 0
    events = [e for p in payloads for e in p["events"]]
    assert [e["event_data"]["path"] for e in events] == ["/api/v1/x"]


def test_close_from_inside_send_does_not_deadlock(reporters: list[Reporter]) -> None:
    holder: list[Reporter] = []
    closed: list[bool] = []

    def send(payload: dict[str, Any]) -> None:
        closed.append(holder[0].close(timeout=0.1))

    reporter = Reporter(send, enabled=True, flush_interval=1000.0)
    holder.append(reporter)
    reporters.append(reporter)
    reporter.log("x")
    reporter.flush()
    deadline = time.monotonic() + 2
    while not closed and time.monotonic() < deadline:
        time.sleep(0.001)
    assert closed == [False]
    assert reporter.log("after") is False


def test_official_telemetry_names_and_capture_exceptions() -> None:
    sent: list[dict[str, Any]] = []
    reporter = Reporter(sent.append, session_id="s-1", enabled=True, flush_interval=60)
    assert reporter.log(event_name="custom", event_data={"k": 1}, severity="INFO")
    assert reporter.log_exception_sync(ValueError("sync"))
    with pytest.raises(KeyError), reporter.capture_exceptions():
        raise KeyError("escaped")
    assert reporter.wait_until_drained(timeout=5)
    events = [e for batch in sent for e in batch["events"]]
    assert any(e.get("event_name") == "custom" for e in events)
    messages = [e.get("error_message") for e in events]
    assert "sync" in messages and "'escaped'" in messages
    reporter.stop()


def test_bearer_tokens_in_header_text_are_masked() -> None:
    from tinkex.telemetry import scrub

    assert scrub("Authorization: Bearer sk-abcdef") == "Authorization: [REDACTED]"
    assert "sk-abc" not in scrub("authorization=Bearer sk-abc")


def _refused_sender(status: int, calls: list[int]) -> Any:
    from tinkex._exceptions import make_status_error

    def send(payload: dict[str, Any]) -> None:
        calls.append(len(payload["events"]))
        raise make_status_error(
            status, {"detail": "<html>secret page</html>"}, request="POST /api/v1/telemetry"
        )

    return send


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_answers_that_cannot_succeed_are_not_retried(
    reporters: list[Reporter], caplog: pytest.LogCaptureFixture, status: int
) -> None:
    calls: list[int] = []
    delays: list[float] = []
    reporter = make(reporters, _refused_sender(status, calls), sleep=delays.append)
    reporter.log("x")
    assert reporter.wait_until_drained(2)
    assert calls == [1] and delays == []
    assert reporter.dropped == 1
    assert f"answered HTTP {status}" in caplog.text
    assert "secret page" not in caplog.text


def test_a_refused_key_stops_delivery(reporters: list[Reporter]) -> None:
    calls: list[int] = []
    reporter = make(reporters, _refused_sender(401, calls))
    reporter.log("first")
    assert reporter.wait_until_drained(2)
    reporter.log("second")
    assert reporter.wait_until_drained(2)
    assert calls == [1]  # the second batch is dropped without a request
    assert reporter.dropped == 2


def test_close_sends_each_batch_once_without_back_off(reporters: list[Reporter]) -> None:
    """Issue 12.4: a failing telemetry endpoint must not delay close() or interpreter exit."""
    send = FakeSender(failures=100)
    reporter = Reporter(send, enabled=True, flush_interval=1000.0, max_retries=3)
    reporters.append(reporter)
    reporter.log("last words")
    started = time.monotonic()
    reporter.close(timeout=5)
    assert time.monotonic() - started < 0.5
    assert send.calls == 1 and reporter.dropped == 1
