"""The dynamic client config (issue 11.4): fetched after the client config as the official SDK
does, its flags honoured (``sample_cancel_enabled`` -> ``cancel_future`` for abandoned samples),
defaults when a server has no such endpoint."""

from __future__ import annotations

import time
from concurrent.futures import CancelledError

import pytest

import tinkex
from tinkex import types

from .conftest import FakeTinker

PROMPT = types.ModelInput.from_ints([1, 2, 3])
PARAMS = types.SamplingParams(max_tokens=2)
DYNAMIC = "/api/v1/client/dynamic_config"


def test_fetched_right_after_the_client_config_as_background_traffic(
    fake: FakeTinker, service: tinkex.ServiceClient
) -> None:
    fake.reply("POST", DYNAMIC, (200, {"refresh_interval_sec": 300}))
    service.create_lora_training_client("Qwen/Qwen3-8B", rank=4).result(timeout=10)
    paths = fake.paths()
    assert paths[:3] == ["/api/v1/client/config", DYNAMIC, "/api/v1/create_session"]
    call = fake.requests_to(DYNAMIC)[0]
    assert call.json == {"sdk_version": "0.38.0"}
    assert call.headers["x-stainless-read-timeout"] == "10"
    assert "x-sdk-method" not in call.headers


def test_a_server_without_the_endpoint_gives_the_defaults(
    fake: FakeTinker, service: tinkex.ServiceClient
) -> None:
    fake.reply("POST", DYNAMIC, (404, {"detail": "Not Found"}))
    sampler = service.create_sampling_client(base_model="Qwen/Qwen3-8B").result(timeout=10)
    assert sampler.sample(PROMPT, 1, PARAMS).result(timeout=10).sequences
    assert len(fake.requests_to(DYNAMIC)) == 1  # once, not retried
    assert sampler.holder.dynamic_config() == types.ClientDynamicConfigResponse()


def _abandon_a_pending_sample(fake: FakeTinker, service: tinkex.ServiceClient) -> str:
    sampler = service.create_sampling_client(base_model="Qwen/Qwen3-8B").result(timeout=10)
    request_id = "req-pending"
    fake.reply("POST", "/api/v1/asample", (200, {"request_id": request_id}))
    fake.script_future(request_id, (200, {"type": "try_again", "request_id": request_id}))
    future = sampler.sample(PROMPT, 1, PARAMS)
    deadline = time.monotonic() + 10
    while not fake.requests_to("/api/v1/retrieve_future") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert future.cancel()
    with pytest.raises(CancelledError):
        future.result(timeout=10)
    return request_id


def test_sample_cancel_enabled_sends_cancel_future_for_an_abandoned_sample(
    fake: FakeTinker, service: tinkex.ServiceClient
) -> None:
    fake.reply("POST", DYNAMIC, (200, {"sample_cancel_enabled": True}))
    fake.reply("POST", "/api/v1/cancel_future", (200, {}))
    request_id = _abandon_a_pending_sample(fake, service)
    deadline = time.monotonic() + 10
    while not fake.requests_to("/api/v1/cancel_future") and time.monotonic() < deadline:
        time.sleep(0.01)
    cancels = fake.requests_to("/api/v1/cancel_future")
    assert [c.json for c in cancels] == [{"request_id": request_id}]
    assert "x-sdk-method" not in cancels[0].headers


def test_without_the_flag_nothing_is_cancelled_server_side(
    fake: FakeTinker, service: tinkex.ServiceClient
) -> None:
    fake.reply("POST", DYNAMIC, (200, {"sample_cancel_enabled": False}))
    _abandon_a_pending_sample(fake, service)
    time.sleep(0.3)
    assert fake.requests_to("/api/v1/cancel_future") == []
