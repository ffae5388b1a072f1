"""Per-call options of ``SamplingClient.sample`` (tinkex extensions, Elixir Tinkex's
``do_sample`` options; parity row 6.2): ``timeout`` is the HTTP read timeout of the ``asample``
submission, ``telemetry_metadata`` is attached to the telemetry events of the call's requests,
``queue_state_observer`` sees the queue states of the call's polls."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import tinkex
from tinkex import telemetry, types
from tinkex._futures import QueueState

from .conftest import FakeTinker, default_sample_result

PROMPT = types.ModelInput.from_ints([1, 2, 3])
PARAMS = types.SamplingParams(max_tokens=2)


@pytest.fixture
def http_events() -> Iterator[list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    telemetry.attach(
        "sample-options", telemetry.HTTP_REQUEST_STOP, lambda e, m, md: events.append(dict(md))
    )
    yield events
    telemetry.detach("sample-options")


def test_timeout_is_the_read_timeout_of_the_submission_only(
    fake: FakeTinker, sampler: tinkex.SamplingClient
) -> None:
    sampler.sample(PROMPT, 1, PARAMS, timeout=7.5).result(timeout=10)
    sampler.sample(PROMPT, 1, PARAMS).result(timeout=10)
    first, second = fake.requests_to("/api/v1/asample")
    assert first.headers["x-stainless-read-timeout"] == "7.5"
    assert second.headers["x-stainless-read-timeout"] == "60"  # the client's default again
    polls = fake.requests_to("/api/v1/retrieve_future")
    assert {p.headers["x-stainless-read-timeout"] for p in polls} == {"45"}  # the long poll


def test_timeout_must_be_positive(fake: FakeTinker, sampler: tinkex.SamplingClient) -> None:
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds, got 0"):
        sampler.sample(PROMPT, 1, PARAMS, timeout=0)
    assert fake.requests_to("/api/v1/asample") == []


def test_telemetry_metadata_reaches_the_submission_and_the_polls(
    fake: FakeTinker, sampler: tinkex.SamplingClient, http_events: list[dict[str, Any]]
) -> None:
    sampler.sample(PROMPT, 1, PARAMS, telemetry_metadata={"step": 3}).result(timeout=10)
    sampler.sample(PROMPT, 1, PARAMS).result(timeout=10)
    tagged = [md["path"] for md in http_events if md.get("metadata") == {"step": 3}]
    assert tagged == ["/api/v1/asample", "/api/v1/retrieve_future"]
    untagged = [md for md in http_events if md["path"] == "/api/v1/asample"][1]
    assert "metadata" not in untagged


def test_telemetry_metadata_adds_to_an_enclosing_block(
    fake: FakeTinker, sampler: tinkex.SamplingClient, http_events: list[dict[str, Any]]
) -> None:
    with telemetry.metadata(run="r1", step=1):
        sampler.sample(PROMPT, 1, PARAMS, telemetry_metadata={"step": 2}).result(timeout=10)
    asample = next(md for md in http_events if md["path"] == "/api/v1/asample")
    assert asample["metadata"] == {"run": "r1", "step": 2}


def test_queue_state_observer_sees_the_polls_of_its_call(
    fake: FakeTinker, sampler: tinkex.SamplingClient
) -> None:
    fake.reply("POST", "/api/v1/asample", (200, {"request_id": "req-s"}))
    paused = {"type": "try_again", "request_id": "req-s", "queue_state": "paused_capacity"}
    fake.script_future(
        "req-s",
        (200, {**paused, "queue_state_reason": "busy"}),
        (200, default_sample_result({"num_samples": 1})),
    )
    seen: list[tuple[QueueState, str | None]] = []
    result = sampler.sample(
        PROMPT, 1, PARAMS, queue_state_observer=lambda s, r: seen.append((s, r))
    ).result(timeout=10)
    assert len(result.sequences) == 1
    assert seen == [(QueueState.PAUSED_CAPACITY, "busy"), (QueueState.ACTIVE, None)]


def test_a_failing_observer_does_not_fail_the_sample(
    fake: FakeTinker, sampler: tinkex.SamplingClient
) -> None:
    def observer(state: QueueState, reason: str | None) -> None:
        raise RuntimeError("observer bug")

    result = sampler.sample(PROMPT, 2, PARAMS, queue_state_observer=observer).result(timeout=10)
    assert len(result.sequences) == 2


def test_an_official_queue_state_observer_object_works(
    fake: FakeTinker, sampler: tinkex.SamplingClient
) -> None:
    api_future_impl = pytest.importorskip("tinker.lib.api_future_impl")

    class Recorder(api_future_impl.QueueStateObserver):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            self.seen: list[tuple[object, str | None]] = []

        def on_queue_state_change(
            self, queue_state: object, queue_state_reason: str | None
        ) -> None:
            self.seen.append((queue_state, queue_state_reason))

    fake.reply("POST", "/api/v1/asample", (200, {"request_id": "req-o"}))
    paused = {"type": "try_again", "request_id": "req-o", "queue_state": "paused_rate_limit"}
    fake.script_future("req-o", (200, paused), (200, default_sample_result({"num_samples": 1})))
    recorder = Recorder()
    sampler.sample(PROMPT, 1, PARAMS, queue_state_observer=recorder).result(timeout=10)
    assert [str(state) for state, _ in recorder.seen] == ["paused_rate_limit", "active"]


def test_an_observer_that_cannot_be_called_is_refused_before_sending(
    fake: FakeTinker, sampler: tinkex.SamplingClient
) -> None:
    with pytest.raises(TypeError, match="queue_state_observer must be a callable"):
        sampler.sample(PROMPT, 1, PARAMS, queue_state_observer=42)  # type: ignore[arg-type]
    assert fake.requests_to("/api/v1/asample") == []
