"""HTTP telemetry events say what the request was made for: the public method, the ids of its
client and the user's per-call metadata (issue 11, "telemetry ids"), also for the polls and
resends that run later on worker threads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import tinkex
from tinkex import telemetry, types

from .conftest import FakeTinker, datum

Seen = list[tuple[str, dict[str, Any]]]


@pytest.fixture
def seen() -> Iterator[Seen]:
    events: Seen = []
    telemetry.attach(
        "ctx-test", telemetry.HTTP_REQUEST_STOP, lambda e, m, md: events.append((e, dict(md)))
    )
    yield events
    telemetry.detach("ctx-test")


def test_training_requests_carry_method_ids_and_user_metadata(
    fake: FakeTinker, training: tinkex.TrainingClient, seen: Seen
) -> None:
    with telemetry.metadata(experiment="sweep-3", step=12):
        training.forward_backward([datum([1, 2, 3])], "cross_entropy").result(timeout=10)
    training.optim_step(types.AdamParams()).result(timeout=10)
    by_path = [(md["path"], md) for _, md in seen]
    fwd = next(md for path, md in by_path if path == "/api/v1/forward_backward")
    poll = next(md for path, md in by_path if path == "/api/v1/retrieve_future")
    for md in (fwd, poll):  # the poll runs on a worker thread, later
        assert md["sdk_method"] == "TrainingClient.forward_backward"
        assert md["model_id"] == training.model_id
        assert md["session_id"] == training.holder.current_session_id
        assert md["metadata"] == {"experiment": "sweep-3", "step": 12}
    step = next(md for path, md in by_path if path == "/api/v1/optim_step")
    assert step["sdk_method"] == "TrainingClient.optim_step" and "metadata" not in step


def test_sampling_requests_carry_the_sampler_id(
    fake: FakeTinker, service: tinkex.ServiceClient, seen: Seen
) -> None:
    sampler = service.create_sampling_client(base_model="Qwen/Qwen3-8B").result(timeout=10)
    prompt = types.ModelInput.from_ints([1, 2])
    sampler.sample(prompt, 1, types.SamplingParams(max_tokens=2)).result(timeout=10)
    asample = next(md for _, md in seen if md["path"] == "/api/v1/asample")
    assert asample["sampling_session_id"] == sampler.sampling_session_id
    assert asample["sdk_method"] == "SamplingClient.sample"
    config = next(md for _, md in seen if md["path"] == "/api/v1/client/config")
    assert "sdk_method" not in config and "session_id" not in config  # background traffic
