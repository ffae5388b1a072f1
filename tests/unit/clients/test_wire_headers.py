"""The headers every request carries, and which public method each reports (issue 11.2, 11.6).

The official SDK (observed through a recording proxy, tests/compat/test_recording_proxy.py)
sends ``x-sdk-version``/``x-sdk-method`` on every request made while a public method runs —
its submission, its ``retrieve_future`` polls, ``create_sampling_session`` and
``GET samplers/{id}`` of ``create_sampling_client``, the ``sessions/{id}/finish`` of ``close`` —
and neither on background traffic; the ``X-Stainless-*`` platform headers on every request.
"""

from __future__ import annotations

import platform
from typing import Any

import tinkex
from tinkex import types

from .conftest import FakeTinker, datum

PLATFORM = {
    "X-Stainless-Package-Version": "0.38.0",
    "X-Stainless-OS": {"Linux": "Linux", "Darwin": "MacOS", "Windows": "Windows"}.get(
        platform.system(), f"Other:{platform.system()}"
    ),
    "X-Stainless-Runtime": platform.python_implementation(),
    "X-Stainless-Runtime-Version": platform.python_version(),
    "X-Stainless-Async": "false",
    "Accept-Encoding": "gzip, deflate, zstd",
}


def methods(fake: FakeTinker) -> list[tuple[str, str | None]]:
    return [(c.path, c.headers.get("x-sdk-method")) for c in fake.calls]


def test_every_request_carries_the_platform_headers(
    fake: FakeTinker, training: tinkex.TrainingClient
) -> None:
    training.forward_backward([datum([1, 2, 3])], "cross_entropy").result(timeout=10)
    assert fake.calls
    for call in fake.calls:
        for name, value in PLATFORM.items():
            assert call.headers.get(name) == value, (call.path, name)
        assert call.headers["X-Stainless-Arch"] in ("x64", "x32", "arm64", "arm") or call.headers[
            "X-Stainless-Arch"
        ].startswith("other:")


def test_polls_report_the_method_and_background_traffic_none(
    fake: FakeTinker, service: tinkex.ServiceClient
) -> None:
    training = service.create_lora_training_client("Qwen/Qwen3-8B", rank=4).result(timeout=10)
    training.optim_step(types.AdamParams()).result(timeout=10)
    seen = methods(fake)
    create = "ServiceClient.create_lora_training_client"
    assert ("/api/v1/client/config", None) in seen
    assert ("/api/v1/create_session", None) in seen
    assert ("/api/v1/create_model", create) in seen
    assert ("/api/v1/get_info", create) in seen
    assert ("/api/v1/optim_step", "TrainingClient.optim_step") in seen
    polls = [m for p, m in seen if p == "/api/v1/retrieve_future"]
    assert polls[0] == create and polls[-1] == "TrainingClient.optim_step"
    for call in fake.calls:
        if call.headers.get("x-sdk-method") is not None:
            assert call.headers["x-sdk-version"] == "0.38.0"
        else:
            assert "x-sdk-version" not in call.headers


def test_sampling_methods_and_close_report_themselves(
    fake: FakeTinker, service: tinkex.ServiceClient
) -> None:
    sampler = service.create_sampling_client(base_model="Qwen/Qwen3-8B").result(timeout=10)
    prompt = types.ModelInput.from_ints([1, 2, 3])
    fake.sample_result = lambda body: {
        "type": "sample",
        "sequences": [{"stop_reason": "length", "tokens": [7], "logprobs": [-0.5]}],
        "prompt_logprobs": [None, -1.0, -2.0],
    }
    sampler.sample(prompt, 1, types.SamplingParams(max_tokens=2)).result(timeout=10)
    sampler.compute_logprobs(prompt).result(timeout=10)
    service.close()
    seen = methods(fake)
    assert ("/api/v1/create_sampling_session", "ServiceClient.create_sampling_client") in seen
    asamples = [m for p, m in seen if p == "/api/v1/asample"]
    assert asamples == ["SamplingClient.sample", "SamplingClient.compute_logprobs"]
    polls = [m for p, m in seen if p == "/api/v1/retrieve_future"]
    assert polls == ["SamplingClient.sample", "SamplingClient.compute_logprobs"]
    finish = [c for c in fake.calls if c.path.endswith("/finish")]
    assert finish[0].headers["x-sdk-method"] == "ServiceClient.close"
    assert finish[0].headers["x-stainless-read-timeout"] == "60"  # 11.2: as tinker (was 10)
    assert all("x-sdk-method" not in c.headers for c in fake.calls if c.path == "/api/v1/telemetry")


def test_outermost_public_method_wins(fake: FakeTinker, service: tinkex.ServiceClient) -> None:
    fake.reply("DELETE", "/api/v1/training_runs/run-1/checkpoints/weights/a", (200, {}))
    with service.create_rest_client_internal() as rest:
        rest.delete_checkpoint_from_tinker_path("tinker://run-1/weights/a").result(timeout=10)
        rest.delete_checkpoint("run-1", "weights/a").result(timeout=10)
    deletes: list[Any] = [m for p, m in methods(fake) if p.startswith("/api/v1/training_runs/")]
    assert deletes == [
        "RestClient.delete_checkpoint_from_tinker_path",
        "RestClient.delete_checkpoint",
    ]
