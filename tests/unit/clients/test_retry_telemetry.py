"""Telemetry batches carry a warning event for each failed attempt of a holder-level retry loop,
as the official SDK's ``InternalClientHolder.execute_with_retries.exception`` (issue 11.7)."""

from __future__ import annotations

from typing import Any

import pytest

import tinkex

from .conftest import API_KEY, BASE_URL, FakeTinker

EVENT = "InternalClientHolder.execute_with_retries.exception"


def sent_events(fake: FakeTinker) -> list[dict[str, Any]]:
    return [e for call in fake.requests_to("/api/v1/telemetry") for e in call.json["events"]]


def test_a_retried_failure_is_a_warning_event_in_the_next_batch(
    fake: FakeTinker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TINKER_TELEMETRY", "1")
    service = tinkex.ServiceClient(base_url=BASE_URL, api_key=API_KEY)
    training = service.create_lora_training_client("tiny-base", rank=4).result(timeout=10)
    fake.reply("POST", "/api/v1/save_weights", (503, {"detail": "busy"}), None)
    training.save_state("step-1").result(timeout=10)
    service.close()
    events = sent_events(fake)
    assert events[0]["event"] == "SESSION_START"
    retries = [e for e in events if e.get("event_name") == EVENT]
    assert len(retries) == 1
    retry = retries[0]
    assert retry["severity"] == "WARNING"
    data = retry["event_data"]
    assert data["func"] == "POST /api/v1/save_weights"
    assert data["status_code"] == 503 and data["is_retryable"] is True
    assert data["is_user_error"] is False and data["attempt_count"] == 0
    assert data["exception_type"] == "InternalServerError"
    assert API_KEY not in str(events)


def test_a_user_error_is_reported_once_as_a_warning_and_not_retried(
    fake: FakeTinker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TINKER_TELEMETRY", "1")
    rest = tinkex.RestClient(base_url=BASE_URL, api_key=API_KEY)
    fake.reply("GET", "/api/v1/training_runs/nope", (404, {"detail": "no such run"}))
    with pytest.raises(tinkex.NotFoundError):
        rest.get_training_run("nope").result(timeout=10)
    rest.close()
    retries = [e for e in sent_events(fake) if e.get("event_name") == EVENT]
    assert len(retries) == 1
    assert retries[0]["event_data"]["is_user_error"] is True
    assert retries[0]["severity"] == "WARNING"
