"""Telemetry reaches the server's /api/v1/telemetry like the official SDK's, without secrets."""

from __future__ import annotations

import json
import time

import pytest

import tinkex
from tinkex import types
from tinkex.local import LocalServer

pytestmark = pytest.mark.e2e

SECRET_KEY = "tml-local-secret-key-123"


def _events(server: LocalServer) -> list[dict[str, object]]:
    return server.telemetry_events


def test_session_start_user_error_and_custom_event_are_reported_without_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TINKER_TELEMETRY", "1")
    with LocalServer(api_key=SECRET_KEY) as server:
        with tinkex.ServiceClient(base_url=server.base_url, api_key=SECRET_KEY) as service:
            training = service.create_lora_training_client("tinkex/tiny", rank=4).result(30)
            bad = types.Datum(
                model_input=types.ModelInput.from_ints([1, 2]),
                loss_fn_inputs={"target_tokens": [9999, 1], "weights": [1.0, 1.0]},
            )
            with pytest.raises(tinkex.TinkerError):
                training.forward_backward([bad], "cross_entropy").result(timeout=30)
            reporter = service.get_telemetry()
            assert reporter is not None
            assert reporter.log("my_event", {"step": 3})
            assert reporter.wait_until_drained(timeout=10)
        events = _events(server)
        kinds = [e.get("event") for e in events]
        assert "SESSION_START" in kinds
        names = [e.get("event_name") for e in events]
        assert "my_event" in names
        assert "user_error" in names or "UNHANDLED_EXCEPTION" in kinds
        assert SECRET_KEY not in json.dumps(events)


def test_kill_switch_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINKER_TELEMETRY", "0")
    with LocalServer() as server:
        with tinkex.ServiceClient(base_url=server.base_url, api_key=server.api_key) as service:
            service.create_lora_training_client("tinkex/null", rank=4).result(30)
            assert service.get_telemetry() is None
        assert _events(server) == []


@pytest.mark.parametrize("fault", ["401", "reset_before"], ids=["refused-401", "connection-error"])
def test_close_after_telemetry_failures_is_fast_and_prints_no_body(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, fault: str
) -> None:
    """Issue 12.4: every telemetry batch fails (the key is refused, or the connection drops).
    The flush at close sends each batch once, without back-off sleeps, and the warning names
    the failure, never the answer's body."""
    monkeypatch.setenv("TINKER_TELEMETRY", "1")
    caplog.set_level("WARNING", logger="tinkex.telemetry")
    with LocalServer(faults=f"telemetry:{fault}:1000") as server:
        service = tinkex.ServiceClient(base_url=server.base_url, api_key=server.api_key)
        service.create_lora_training_client("tinkex/tiny", rank=2).result(timeout=30)
        reporter = service.get_telemetry()
        assert reporter is not None
        reporter.log("before close")
        started = time.monotonic()
        service.close()
        closing = time.monotonic() - started
        attempts = server.injected_faults.count(("telemetry", fault))
    assert 1 <= attempts <= 2  # SESSION_START may have gone in a batch of its own
    assert reporter.sent_batches == 0 and reporter.dropped >= 2
    assert closing < 2.0, f"close() took {closing:.1f} s"
    warnings = [r.getMessage() for r in caplog.records if "telemetry" in r.getMessage()]
    assert warnings, "the dropped events are not reported"
    assert not any("injected fault" in message for message in warnings), warnings


def test_a_training_request_refused_at_submission_is_reported_as_a_user_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 400 to the forward_backward submission settles its future through the model's ordered
    sender, not through a worker job; it is reported like the failure of any other future."""
    monkeypatch.setenv("TINKER_TELEMETRY", "1")
    with LocalServer(faults="forward_backward:400:1") as server:
        with tinkex.ServiceClient(base_url=server.base_url, api_key=server.api_key) as service:
            training = service.create_lora_training_client("tinkex/null", rank=2).result(30)
            datum = types.Datum(
                model_input=types.ModelInput.from_ints([1, 2]),
                loss_fn_inputs={"target_tokens": [2, 3], "weights": [1.0, 1.0]},
            )
            with pytest.raises(tinkex.BadRequestError):
                training.forward_backward([datum], "cross_entropy").result(timeout=30)
            reporter = service.get_telemetry()
            assert reporter is not None and reporter.wait_until_drained(timeout=10)
        user_errors = [
            e["event_data"]
            for e in _events(server)
            if e.get("event_name") == "user_error" and isinstance(e.get("event_data"), dict)
        ]
    assert [(d["error_type"], d["status_code"]) for d in user_errors] == [("BadRequestError", 400)]


def _forwarded(events: list[dict[str, object]], name: str) -> list[dict[str, object]]:
    return [
        e["event_data"]
        for e in events
        if e.get("event_name") == name and isinstance(e.get("event_data"), dict)
    ]


def test_telemetry_events_forwards_the_sessions_http_and_queue_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Parity row 9.10 (Elixir Tinkex's reporter ``attach_events?``): with
    ``telemetry_events=True`` the HTTP requests and queue states of the session's own calls are
    reported; background traffic (heartbeats, telemetry itself) and other sessions are not."""
    monkeypatch.setenv("TINKER_TELEMETRY", "1")
    faults = "retrieve_future:paused_capacity:1"
    with LocalServer(faults=faults) as server:
        with (
            tinkex.ServiceClient(
                base_url=server.base_url,
                api_key=server.api_key,
                telemetry_events=True,
                heartbeat_interval=0.05,
            ) as service,
            tinkex.ServiceClient(base_url=server.base_url, api_key=server.api_key) as other,
        ):
            training = service.create_lora_training_client("tinkex/null", rank=2).result(30)
            other_training = other.create_lora_training_client("tinkex/null", rank=2).result(30)
            time.sleep(0.2)  # a few heartbeats
            other_training.optim_step(types.AdamParams()).result(timeout=30)
            reporter = service.get_telemetry()
            assert reporter is not None and reporter.wait_until_drained(timeout=10)
        events = _events(server)
    stops = _forwarded(events, "tinkex.http.request.stop")
    paths = {d["path"] for d in stops}
    assert {"/api/v1/create_model", "/api/v1/retrieve_future", "/api/v1/get_info"} <= paths
    assert not paths & {"/api/v1/session_heartbeat", "/api/v1/telemetry", "/api/v1/optim_step"}
    assert all(d.get("model_id") != other_training.model_id for d in stops)
    queue = _forwarded(events, "tinkex.future.queue_state")
    assert [d["queue_state"] for d in queue][:1] == ["paused_capacity"]
    assert training.model_id


def test_without_telemetry_events_no_http_events_are_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TINKER_TELEMETRY", "1")
    with LocalServer() as server:
        with tinkex.ServiceClient(base_url=server.base_url, api_key=server.api_key) as service:
            service.create_lora_training_client("tinkex/null", rank=2).result(30)
            reporter = service.get_telemetry()
            assert reporter is not None and reporter.wait_until_drained(timeout=10)
        events = _events(server)
    assert _forwarded(events, "tinkex.http.request.stop") == []
    assert [e.get("event") for e in events].count("SESSION_START") == 1
